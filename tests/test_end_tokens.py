"""What ends a completion: the end tokens the GGUF declares and the end-of-turn token
of the chat template, never a token llama.cpp takes as an end by its text alone
(Gemma 3's GGUF types "</s>" user-defined; llama.cpp makes it an end of generation,
so any model writing HTML stopped at its first strikethrough)."""
from __future__ import annotations

import os
import shutil

import pytest

from llamabatch import Generator, models
from llamabatch.chat_template import ChatPrompter

CHATML_CLOSING_WITH_ENDOFTEXT = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def retyped(smollm_path, tmp_path_factory, gguf_module) -> str:
    """SmolLM2 as a GGUF that declares <|endoftext|> (0) its eos and types <|im_end|> (2)
    user-defined, as Gemma 3's GGUF types "</s>": llama.cpp's loader makes 2 a control
    token and an end of generation by its text."""
    gguf = gguf_module
    path = tmp_path_factory.mktemp("retyped") / "smollm2-im-end-user-defined.gguf"
    shutil.copyfile(smollm_path, path)
    reader = gguf.GGUFReader(str(path), "r+")
    types = reader.fields["tokenizer.ggml.token_type"]
    assert int(types.parts[types.data[2]][0]) == gguf.TokenType.CONTROL
    types.parts[types.data[2]][0] = gguf.TokenType.USER_DEFINED
    eos = reader.fields["tokenizer.ggml.eos_token_id"]
    eos.parts[eos.data[0]][0] = 0
    del reader  # flushes the memory map
    return str(path)


def test_smollm2_ends_at_its_declared_eos_which_closes_its_turns(smollm_path):
    g = Generator(smollm_path, n_parallel=1)
    assert g.model.declared_end_tokens.tolist() == [2]  # <|im_end|>; <|endoftext|> (0) is not declared
    assert g.chat_prompter.end_of_turn_token() == 2
    assert g.end_tokens == [2]
    [d] = g.generate_details(["Say just the word yes."], chat=True, max_new_tokens=32)
    assert d.finish_reason == "stop" and 2 not in d.tokens.tolist()


def test_the_templates_end_of_turn_token_ends_a_reply(smollm):
    prompter = ChatPrompter(smollm, CHATML_CLOSING_WITH_ENDOFTEXT)
    assert prompter.end_of_turn_token() == 0
    # A template that closes turns with plain text names no end-of-turn token.
    plain = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:"
    assert ChatPrompter(smollm, plain).end_of_turn_token() is None


def test_a_template_adds_its_end_of_turn_to_the_declared_ones(smollm_path):
    g = Generator(smollm_path, n_parallel=1, chat_template=CHATML_CLOSING_WITH_ENDOFTEXT)
    assert g.end_tokens == [2, 0]
    plain = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:"
    assert Generator(smollm_path, n_parallel=1, chat_template=plain).end_tokens == [2]


def test_a_token_ended_only_by_its_text_is_written_as_text(retyped, smollm_path):
    g = Generator(retyped, n_parallel=1, chat_template=CHATML_CLOSING_WITH_ENDOFTEXT)
    assert g.end_tokens == [0]
    chatml = "<|im_start|>user\nSay just the word yes.<|im_end|>\n<|im_start|>assistant\n"
    prompt = g.model.tokenize(chatml, add_special=False, parse_special=True)
    assert 2 in prompt.tolist()  # llama.cpp reads the text as the (now control) token
    [d] = g.generate_details([prompt], max_new_tokens=12)
    # The original model stops its answer with <|im_end|>; here the answer goes on past
    # it, and the token is in the text as the model's tokenizer decodes it.
    [reference] = Generator(smollm_path, n_parallel=1).generate_details([prompt], max_new_tokens=12)
    assert reference.finish_reason == "stop"
    n = reference.completion_tokens
    assert d.tokens[:n].tolist() == reference.tokens.tolist() and int(d.tokens[n]) == 2
    assert d.completion_tokens > n + 1
    assert d.text.startswith(reference.text + "<|im_end|>")


def test_ignore_eos_bans_exactly_the_end_tokens(retyped):
    g = Generator(retyped, n_parallel=1, chat_template=CHATML_CLOSING_WITH_ENDOFTEXT)
    chatml = "<|im_start|>user\nSay just the word yes.<|im_end|>\n<|im_start|>assistant\n"
    prompt = g.model.tokenize(chatml, add_special=False, parse_special=True)
    [d] = g.generate_details([prompt], max_new_tokens=24, ignore_eos=True)
    assert d.finish_reason == "length" and 0 not in d.tokens.tolist()
    assert 2 in d.tokens.tolist()  # not an end here, so not banned


@pytest.mark.slow
def test_gemma3_writes_strikethrough_html_to_the_end():
    if not os.environ.get("LLAMABATCH_SLOW"):
        pytest.skip("set LLAMABATCH_SLOW=1 to fetch Gemma 3 270M (253 MB)")
    g = Generator(models.fetch("gemma3-270m"), n_parallel=1)
    assert g.end_tokens == [1]  # <eos>; no template, and "</s>" (212) is user-defined
    [d] = g.generate_details(["<b>bold</b> <i>it</i> <s>gone</s> <b>x</b> <s>old price"], max_new_tokens=8)
    assert 212 in d.tokens.tolist() and d.finish_reason == "length"
    assert d.text.startswith("</s>")
