"""`template_from` at the run level: the checkpoints' own tokenizers decide, before any model loads."""

import pytest

from dlogp_jax import runs, toy
from dlogp_jax.data.rows import DataError
from dlogp_jax.model.tokenizer import load_tokenizer
from dlogp_jax.runs._sample import chat_template_of

RL_TEMPLATE = (
    "<|im_start|>system\nBe brief.<|im_end|>\n"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base, rl = toy.build_pair(tmp_path_factory.mktemp("pair"))
    tok = load_tokenizer(rl)
    tok.chat_template = RL_TEMPLATE
    tok.save_pretrained(rl)
    return base, rl


def test_pair_with_different_templates(pair, tmp_path):
    base, rl = pair
    assert chat_template_of(base, rl, "rl", True) == RL_TEMPLATE
    assert chat_template_of(base, rl, "base", True) == load_tokenizer(base).chat_template
    assert chat_template_of(base, rl, "", False) is None  # no templating: nothing to choose
    with pytest.raises(DataError, match="different chat templates: set --config.template_from"):
        chat_template_of(base, rl, "", True)
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "Say 1.", "answer": "1"}\n')
    settings = runs.SampleSettings(base=str(base), rl=str(rl), data=str(data), out=str(tmp_path))
    with pytest.raises(DataError, match="template_from"):
        runs.sample(settings)
    assert not (tmp_path / "samples.jsonl").exists()


def test_template_from_is_validated():
    with pytest.raises(ValueError, match=r"template_from='chat': use base or rl"):
        runs.SampleSettings(base="b", data="d", template_from="chat")
    with pytest.raises(ValueError, match=r"template_from='x'"):
        runs.ScoreSettings(base="b", data="d", template_from="x")
