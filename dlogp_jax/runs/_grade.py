"""`grade`: responses from any engine (vLLM, our sampler, ...) graded against their answers.

The graders are those of `rl.rewards` run by its `Grader` (each response under its own deadline):
`dapo_answer` (verl's math_dapo), `boxed_math_verify` (the official extrapolation grader),
`accuracy` (`rewards.grade`), any registered reward, or `by_source`: each row's grader chosen by
its data source (math_dapo / aime* -> dapo_answer, as verl routes them). The metrics are
`analysis.accuracy`'s, the code `dlogp-sample`'s summary uses. Outputs in `settings.out`:
  graded.jsonl  one line per response: row (0-based in the data), prompt (the group key),
                sample (its place in the group), grader, score, correct, pred (the answer the
                grader read, normalised), timed_out.
  summary.json  accuracy (Avg@n) with its 95% t-interval over prompts, pass_at_k and maj_at_k
                (k = 1, 2, 4, ..., n), num_prompts, num_responses, timeouts, graders used, settings.
  run.json      the settings and the session (versions, devices, start/end time, status).
One run at a time holds `out`; the two result files are written as one set (`files.output_set`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from absl import logging

from dlogp_jax import outputs
from dlogp_jax.analysis.accuracy import accuracy_metrics
from dlogp_jax.analysis.sample_summary import strip_special_tokens
from dlogp_jax.data.rows import read_rows, where
from dlogp_jax.errors import DataError
from dlogp_jax.rl.rewards import REWARDS, Grader, answer_key
from dlogp_jax.runs import files
from dlogp_jax.runs import settings as settings_lib
from dlogp_jax.runs.settings import GradeSettings


def field(row: dict[str, Any], name: str) -> Any:
    """`row[name]`, following dots into nested mappings ("reward_model.ground_truth"); None if
    absent."""
    if name in row:
        return row[name]
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def grader_names(settings: GradeSettings, sources: list[str]) -> list[str]:
    """The grader of each row: `settings.grader`, or by data source when it is "by_source".

    Raises:
      ValueError: an unknown grader name.
    """
    if settings.grader == "by_source":
        pairs = settings_lib.parse_rewards_by_source(settings.rewards_by_source)
        names = [
            next((g for p, g in pairs if s.startswith(p)), settings.default_grader) for s in sources
        ]
    else:
        names = [settings.grader] * len(sources)
    known = sorted(REWARDS) + ["accuracy"]
    if unknown := sorted(set(names) - set(known)):
        raise ValueError(f"grader {unknown}: use by_source or one of {known}.")
    return names


def read_responses(settings: GradeSettings) -> list[dict[str, Any]]:
    """One record per response: row, prompt, sample, response, answer, source (from `data`).

    Raises:
      DataError: a row without a response or an answer.
    """
    records = []
    for i, row in enumerate(read_rows(settings.data)):
        loc = where(settings.data, i, row)
        responses = field(row, settings.response_field)
        answer = field(row, settings.answer_field)
        if responses is None or answer is None:
            missing = settings.response_field if responses is None else settings.answer_field
            raise DataError(
                f"{loc}: no {missing!r} field; name the columns with --config.response_field "
                "and --config.answer_field."
            )
        if isinstance(responses, str):
            responses = [responses]
        prompt = field(row, settings.prompt_field) if settings.prompt_field else None
        prompt = f"row {i}" if prompt is None else getattr(prompt, "item", lambda: prompt)()
        source = field(row, settings.data_source_field) if settings.data_source_field else None
        for response in list(responses):
            if not isinstance(response, str):
                raise DataError(f"{loc}: {settings.response_field!r} holds a non-string response.")
            text = strip_special_tokens(response) if settings.strip_special_tokens else response
            records.append(
                {
                    "row": i,
                    "prompt": prompt if isinstance(prompt, (int, str)) else str(prompt),
                    "response": text,
                    "answer": str(answer),
                    "source": str(source or ""),
                }
            )
    return records


def grade(settings: GradeSettings) -> Path:
    """Grades every response of `settings.data`; writes graded.jsonl and summary.json.

    Returns:
      the output directory.
    Raises:
      DataError: unreadable data or a row without a response / answer.
      ValueError: an unknown grader.
    """
    out = Path(settings.out)
    with files.locked(out):
        return _grade(settings, out)


def _grade(settings: GradeSettings, out: Path) -> Path:
    records = read_responses(settings)
    names = grader_names(settings, [r["source"] for r in records])
    record = {**settings_lib.config_dict(settings), "tool": "grade"}
    run = files.session(out, record, write=True)
    with run, Grader(workers=settings.workers, timeout_s=settings.timeout_s) as grader:
        responses = [r["response"] for r in records]
        scores, late = grader.score_each(names, responses, [r["answer"] for r in records])
    rows, groups, seen = [], {}, {}
    for rec, name, s, t in zip(records, names, scores, late):
        pred = answer_key(name, rec["response"])
        sample = seen.get(rec["prompt"], 0)
        seen[rec["prompt"]] = sample + 1
        row = {"row": rec["row"], "prompt": rec["prompt"], "sample": sample, "grader": name}
        row.update(score=float(s), correct=bool(s > 0), pred=pred, timed_out=bool(t))
        rows.append(row)
        groups.setdefault(rec["prompt"], []).append((row["correct"], pred))
    summary = accuracy_metrics(groups)
    summary.update(num_responses=len(rows), timeouts=int(sum(late)))
    summary["graders"] = {n: names.count(n) for n in sorted(set(names))}
    summary["settings"] = settings_lib.config_dict(settings)
    with files.output_set(out):
        outputs.write_jsonl(out / "graded.jsonl", rows)
        outputs.write_json(out / "summary.json", summary)
    keys = ("accuracy", "accuracy_ci95", "num_prompts", "timeouts")
    logging.info("wrote %s: %s", out, {k: summary.get(k) for k in keys})
    return out
