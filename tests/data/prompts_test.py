"""`template_from`: whose chat template renders a base/RL pair's prompts, and the refusal when the
user did not choose and the two templates differ."""

import copy
import json

import pytest

from dlogp_jax import toy
from dlogp_jax.data import prompts
from dlogp_jax.data.rows import DataError

# An RL (assistant) template with a system turn: what a chat-tuned checkpoint often ships.
RL_TEMPLATE = (
    "<|im_start|>system\nYou are helpful.<|im_end|>\n"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
BASE_TEXT = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
RL_TEXT = "<|im_start|>system\nYou are helpful.<|im_end|>\n" + BASE_TEXT


@pytest.fixture(scope="module")
def pair():
    base = toy.build_tokenizer()
    rl = copy.deepcopy(base)
    rl.chat_template = RL_TEMPLATE
    return base, rl


@pytest.mark.parametrize(("template_from", "want"), [("base", BASE_TEXT), ("rl", RL_TEXT)])
def test_chosen_template_renders_the_prompt(pair, template_from, want):
    base, rl = pair
    template = prompts.pick_chat_template(base, rl, template_from)
    # Rendering always tokenizes with the base tokenizer; only the template text is the RL one's.
    assert prompts.render_prompt(base, "2+2?", True, template) == want


def test_unchosen_template_is_refused_only_when_they_differ(pair):
    base, rl = pair
    with pytest.raises(DataError, match=r"different chat templates: set --config.template_from=rl"):
        prompts.pick_chat_template(base, rl, "")
    same = copy.deepcopy(base)
    assert prompts.pick_chat_template(base, same, "") == base.chat_template
    assert prompts.pick_chat_template(base, None, "") == base.chat_template


def test_bad_template_from_and_rl_without_a_checkpoint(pair):
    base, _ = pair
    with pytest.raises(DataError, match="template_from=rl needs an RL checkpoint"):
        prompts.pick_chat_template(base, None, "rl")
    with pytest.raises(DataError, match=r"template_from='assistant': use base or rl"):
        prompts.pick_chat_template(base, None, "assistant")


def test_load_prompts_and_encode_rows_use_the_given_template(pair, tmp_path):
    base, _ = pair
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "2+2?", "answer": "4"}) + "\n")
    got = prompts.load_prompts(path, base, chat_template=True, template=RL_TEMPLATE)
    assert base.decode(list(got[0].ids)) == RL_TEXT
    ex = prompts.encode_rows(
        [{"prompt": "2+2?", "response": "4"}],
        base,
        path="x",
        vocab_limit=len(base),
        chat_template=True,
        template=RL_TEMPLATE,
    )[0]
    assert base.decode(list(ex.prompt_ids)) == RL_TEXT
    # No template argument: the tokenizer's own (unchanged behaviour).
    plain = prompts.load_prompts(path, base, chat_template=True)
    assert base.decode(list(plain[0].ids)) == BASE_TEXT
