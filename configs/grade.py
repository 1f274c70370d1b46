"""`dlogp-grade` configuration: grade responses (from vLLM, `dlogp-sample` or any engine) against
their answers, as our sampler and trainer grade (docs/method.md §5).

  dlogp-grade --config=configs/grade.py --config.data=FILE --config.grader=boxed_math_verify
  dlogp-grade --config=configs/grade.py --config.data=runs/sample/samples.jsonl \
      --config.response_field=text --config.grader=accuracy
  dlogp-grade --config=configs/grade.py --config.data=verl.parquet \
      --config.answer_field=reward_model.ground_truth    # graded by data_source, as verl does
"""

import ml_collections


def get_config(arg=None):
    c = ml_collections.ConfigDict()

    # Inputs and outputs.
    c.data = ""  # .jsonl / .parquet: a response (or a list of responses) and an answer per row
    c.out = "runs/grade"  # output directory (graded.jsonl, summary.json)
    c.response_field = "response"  # column of the response text (a string or a list of strings)
    c.answer_field = "answer"  # column of the reference answer; dotted names reach inside rows
    c.prompt_field = "prompt_index"  # groups a prompt's samples; rows without it stand alone
    c.data_source_field = "data_source"  # column naming the data source (for grader=by_source)
    c.strip_special_tokens = True  # drop <|...|> tokens before grading (as DAPO and dlogp-sample)

    # Grader: dapo_answer (verl's math_dapo: the last `Answer:` line), boxed_math_verify (the
    # official extrapolation grader: the last \boxed{} with math-verify), accuracy (the box, else
    # the Answer: line, with math-verify), any registered reward, or by_source.
    c.grader = "by_source"
    c.rewards_by_source = "math_dapo:dapo_answer,aime:dapo_answer"  # prefix:grader for by_source
    c.default_grader = "boxed_math_verify"  # by_source: the grader of unlisted data sources

    # Grading processes.
    c.workers = 2  # processes running the graders (0 = in process)
    c.timeout_s = 10.0  # wall-clock limit of one response; a timeout is wrong and counted
    return c
