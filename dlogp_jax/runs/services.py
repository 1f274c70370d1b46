"""The optional outside services of `train`: Weights & Biases (metrics) and the Hugging Face Hub
(the final export), each checked when the settings are made, before any work.

W&B: `open_wandb` starts (or, on resume, continues) the run whose id `workdir/wandb_run_id` keeps,
with `resume="allow"`; offline mode (the default) writes `wandb/offline-run-*` under `$WANDB_DIR`
(else the work directory) for a later `wandb sync`, with no network. Only process 0 calls it.
Hub: `upload_export` creates the repo (`exist_ok`) and uploads one export directory; it is refused
up front in offline mode (`HF_HUB_OFFLINE`) and without a token. `wandb` and `huggingface_hub` are
imported only when used: neither is needed by a run that does not ask for it.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

WANDB_MISSING = (
    "wandb is not installed: pip install 'dlogp_jax[wandb]' (or set logging.wandb=false)."
)
RUN_ID_FILE = "wandb_run_id"  # in the work directory: a resumed run continues the same W&B run


def wandb_problems() -> list[str]:
    """[] when `wandb` can be imported, else the one-line fix (found without importing it)."""
    return [] if importlib.util.find_spec("wandb") else [WANDB_MISSING]


def hub_problems(repo: str, field: str = "hub_repo") -> list[str]:
    """Why an upload to the Hub repo `repo` cannot happen here: offline mode or no token.

    Read when the settings are made, so a run that could not upload its export refuses before it
    trains instead of after.
    """
    import huggingface_hub  # only when an upload is asked for
    from huggingface_hub import constants

    # The constant is read when huggingface_hub is imported; the variable may be set since.
    env = os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES
    if env or constants.HF_HUB_OFFLINE:
        return [
            f"{field}={repo!r}: HF_HUB_OFFLINE is set, so the export cannot be uploaded; unset "
            f"HF_HUB_OFFLINE or leave {field} empty (upload hf/final later with `hf upload`)."
        ]
    if not huggingface_hub.get_token():
        return [
            f"{field}={repo!r}: no Hugging Face token; run `huggingface-cli login` (or `hf auth "
            f"login`), set HF_TOKEN, or leave {field} empty."
        ]
    return []


def open_wandb(
    workdir: Path,
    *,
    project: str,
    entity: str,
    run_name: str,
    mode: str,
    config: Mapping[str, Any],
) -> Any:
    """Starts the W&B run of `workdir` (the same run again when `workdir` has a run id).

    Args:
      workdir: the training work directory; `wandb_run_id` there holds the run id.
      project, entity, run_name, mode: as `wandb.init` takes them ("" entity: the default one;
        "" run_name: the work directory's name).
      config: the run's settings (nested dicts), shown as the W&B run's config.
    Returns:
      the `wandb` Run (`.log(dict, step=)`, `.finish(exit_code=)`).
    Raises:
      ValueError: wandb.init failed (one line: e.g. online without a login).
    """
    import wandb  # optional dependency: the settings checked that it imports

    id_file = workdir / RUN_ID_FILE
    run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
    id_file.write_text(run_id + "\n")
    try:
        return wandb.init(
            project=project,
            entity=entity or None,
            name=run_name or workdir.resolve().name,
            mode=mode,
            id=run_id,
            resume="allow",
            dir=os.environ.get("WANDB_DIR") or str(workdir),
            config=dict(config),
        )
    except (wandb.errors.Error, OSError) as e:
        raise ValueError(
            f"logging.wandb_mode={mode!r}: wandb.init failed ({_first_line(e)}); log in with "
            "`wandb login` (or WANDB_API_KEY), or use --config.logging.wandb_mode=offline."
        ) from None


def wandb_sink(run) -> Callable[[dict[str, float], int], None]:
    """`trainer.RunContext.scalar_sink` logging each step's tagged scalars to the W&B `run`."""

    def sink(scalars: dict[str, float], step: int) -> None:
        run.log(scalars, step=step)

    return sink


def upload_export(folder: Path, *, repo: str, private: bool, log: Callable[[str], None]) -> str:
    """Uploads the export directory `folder` to the Hub model repo `repo` (created if missing).

    Returns:
      the repo's URL.
    Raises:
      ValueError: the upload failed (one line; the export stays complete in `folder`).
    """
    import huggingface_hub  # only when an upload is asked for

    try:
        url = huggingface_hub.create_repo(repo, private=private, exist_ok=True)
        huggingface_hub.upload_folder(
            repo_id=repo, folder_path=str(folder), commit_message=f"dlogp-train export {folder}"
        )
    except (OSError, ValueError) as e:  # HTTP errors are OSErrors; a bad repo id a ValueError
        raise ValueError(
            f"hub_repo={repo!r}: the upload of {folder} failed ({_first_line(e)}); the export is "
            f"complete there: retry with `hf upload {repo} {folder}`."
        ) from None
    log(f"uploaded {folder} to {url}")
    return str(url)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
