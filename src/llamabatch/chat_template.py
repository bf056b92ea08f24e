"""Chat prompts as the model's own Jinja template renders them, the way transformers does.

:class:`ChatTemplate` renders a template with transformers' settings (a sandboxed
``jinja2`` environment with ``trim_blocks``, ``lstrip_blocks`` and loop controls, its
``tojson``, ``raise_exception`` and ``strftime_now``, the special tokens as strings).
:class:`ChatPrompter` turns messages into the token ids a Generator decodes: the
template's own special tokens are read as such, a message's text never is, so a
message cannot close its own turn.
"""
from __future__ import annotations

import json
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.parser
import jinja2.sandbox
import numpy as np

from . import _core

Message = Mapping[str, Any]

# The GGUF keys of the tokens transformers passes to a template (its special_tokens_map).
SPECIAL_TOKEN_KEYS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "sep_token": "tokenizer.ggml.seperator_token_id",  # llama.cpp's spelling
    "pad_token": "tokenizer.ggml.padding_token_id",
    "cls_token": "tokenizer.ggml.cls_token_id",
    "mask_token": "tokenizer.ggml.mask_token_id",
}


class _Generation(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}`` renders its body. transformers marks the
    assistant's tokens with it (AssistantTracker) for training masks; a prompt needs no mask."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Callable[[], str]) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: Optional[int] = None,
            separators: Optional[tuple[str, str]] = None, sort_keys: bool = False) -> str:
    # jinja2's own tojson escapes HTML characters ('<' becomes '\u003c'); transformers' does not.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


def _environment() -> jinja2.sandbox.ImmutableSandboxedEnvironment:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=[_Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


class ChatTemplate:
    """A Jinja chat template, compiled once.

    Args:
        source: the template text.
        name: what error messages call it (the model's file, or the template's).
        variables: further variables every render sees (the special tokens' texts).

    Raises ValueError when ``source`` is not valid Jinja.
    """

    def __init__(self, source: str, *, name: str = "chat template", variables: Mapping[str, Any] | None = None):
        self.source = source
        self.name = name
        self.variables = dict(variables or {})
        try:
            self._template = _environment().from_string(source)
        except jinja2.exceptions.TemplateSyntaxError as e:
            raise ValueError(f"{name} is not a valid Jinja template: {e.message} (line {e.lineno})") from None

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True, **variables: Any) -> str:
        """The prompt text of ``messages`` (``add_generation_prompt``: ending where the
        assistant's turn begins). A template's ``raise_exception`` (or any template
        error) is a ValueError naming the template and the reason."""
        try:
            return self._template.render(messages=list(messages), tools=None, documents=None,
                                         add_generation_prompt=add_generation_prompt,
                                         **{**self.variables, **variables})
        except jinja2.exceptions.TemplateError as e:
            raise ValueError(f"{self.name} refused these messages: {e.message or type(e).__name__}") from None


def special_token_texts(model: _core.Model) -> dict[str, str]:
    """``bos_token``, ``eos_token`` ... as strings, for the tokens the GGUF declares."""
    out = {}
    for variable, key in SPECIAL_TOKEN_KEYS.items():
        value = model.meta(key)
        if value.isdigit() and int(value) < model.n_vocab:
            out[variable] = model.token_text(int(value)).decode("utf-8", errors="replace")
    return out


def template_source(model: _core.Model, chat_template: str | os.PathLike[str] | None) -> tuple[str, str]:
    """The Jinja text a ``chat_template`` argument names, and what to call it in errors.

    None: the GGUF's default template. A str holding ``{`` is a template itself; else
    the name of a template the GGUF stores (``tokenizer.chat_template.<name>``), or a
    file's path. Raises ValueError when a model has none, or the name is neither."""
    model_name = f"'{model.path}'"
    if chat_template is None:
        source = model.chat_template
        if not source:
            raise ValueError(f"{model_name} has no chat template (it is a base model): pass chat=False and a plain "
                             "prompt, or give one with chat_template=")
        return source, f"the chat template of {model_name}"
    if isinstance(chat_template, os.PathLike):
        return _read(Path(chat_template)), f"chat template {os.fspath(chat_template)!r} for {model_name}"
    if not isinstance(chat_template, str):
        raise TypeError(f"chat_template must be a str, a path or None, got {type(chat_template).__name__}")
    if "{" in chat_template:
        return chat_template, f"the chat template given for {model_name}"
    named = model.named_chat_template(chat_template) if chat_template else ""
    if named:
        return named, f"chat template {chat_template!r} of {model_name}"
    if chat_template and Path(chat_template).is_file():
        return _read(Path(chat_template)), f"chat template {chat_template!r} for {model_name}"
    raise ValueError(f"chat_template {chat_template!r} is not a Jinja template, not the name of one stored in "
                     f"{model_name} (tokenizer.chat_template.<name>) and not a file")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise FileNotFoundError(f"cannot read chat template {str(path)!r}: {e.strerror}") from None


class ChatPrompter:
    """Messages to the token ids a Generator decodes, through one chat template.

    The prompt is tokenized as transformers tokenizes its rendering (no BOS added;
    the template writes it where the model wants it), except that special-token
    text inside a message stays text. The messages' places in the prompt are found
    by rendering a placeholder in each one's stead; the prompt is cut at the special
    tokens the template itself wrote, and the text between them is tokenized with
    special tokens off. A template that rewrites message text past recognition
    (beyond trimming whitespace) is tokenized whole, and a message holding special-
    token text is then refused.

    Args:
        model: the core's Model (its vocabulary and metadata).
        chat_template: see :func:`template_source`.
    """

    def __init__(self, model: _core.Model, chat_template: str | os.PathLike[str] | None = None) -> None:
        self.model = model
        source, name = template_source(model, chat_template)
        self.template = ChatTemplate(source, name=name, variables=special_token_texts(model))
        self._control = frozenset(int(t) for t in model.control_tokens)

    def end_of_turn_token(self) -> Optional[int]:
        """The control token the template closes an assistant turn with (``<|im_end|>``,
        ``<end_of_turn>``), or None when it writes none: a reply ends there.

        Found by rendering a user turn and an assistant turn with placeholders for
        their text, and reading the first control token after the assistant's."""
        marks = _placeholders(2)
        turns = [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]
        frame = self._frame(turns, marks, lambda i, m: m, add_generation_prompt=False)
        if frame is None:
            return None
        for kind, piece in self._split_special(frame[2]):
            if kind == "special":
                [token] = self.model.tokenize(piece, False, True).tolist()
                return int(token)
        return None

    def text(self, messages: Sequence[Message]) -> str:
        """The prompt text, as transformers' ``apply_chat_template(..., add_generation_prompt=True)``."""
        return self.template.render(messages)

    def tokens(self, messages: Sequence[Message]) -> np.ndarray:
        """The prompt's token ids (int32)."""
        prompt = self.text(messages)
        pieces = self._pieces(messages, prompt)
        if pieces is None:
            return self._whole(messages, prompt)
        out: list[np.ndarray] = []
        text = ""
        for kind, piece in pieces:
            if kind == "special":
                if text:
                    out.append(self.model.tokenize(text, False, False))
                    text = ""
                out.append(self.model.tokenize(piece, False, True))
            else:
                text += piece
        if text:
            out.append(self.model.tokenize(text, False, False))
        return np.concatenate(out).astype(np.int32, copy=False) if out else np.zeros(0, np.int32)

    # ------------------------------------------------------------ finding the messages
    def _pieces(self, messages: Sequence[Message], prompt: str) -> Optional[list[tuple[str, str]]]:
        """The prompt as ("special", text) and ("text", text) pieces, or None when the
        messages cannot be found in it."""
        contents = [m.get("content") for m in messages]
        if not all(isinstance(c, str) for c in contents):
            return None
        marks = _placeholders(len(messages))
        frame = self._frame(messages, marks, lambda i, m: m)
        if frame is None:
            return None
        used = [str(c) for c in contents]
        if _join(frame, used) != prompt:
            # Perhaps the template trims message text: a placeholder with spaces
            # around shows which side each message loses them on.
            probe = self._frame(messages, marks, lambda i, m: f" {m} ")
            if probe is None:
                return None
            used = [_trimmed(str(c), before, after) for c, before, after in zip(contents, probe[:-1], probe[1:])]
            if _join(frame, used) != prompt:
                return None
        pieces: list[tuple[str, str]] = []
        for i, template_text in enumerate(frame):
            pieces.extend(self._split_special(template_text))
            if i < len(used):
                pieces.append(("text", used[i]))
        return pieces

    def _frame(self, messages: Sequence[Message], marks: list[str],
               content: Callable[[int, str], str], *, add_generation_prompt: bool = True) -> Optional[list[str]]:
        """The template's text around each message: len(messages) + 1 strings, when each
        placeholder appears exactly once and in order; else None."""
        marked = [{**m, "content": content(i, marks[i])} for i, m in enumerate(messages)]
        try:
            skeleton = self.template.render(marked, add_generation_prompt=add_generation_prompt)
        except ValueError:
            return None  # a template that reads the content (and dislikes the placeholder)
        frame, start = [], 0
        for mark in marks:
            at = skeleton.find(mark, start)
            if at < 0 or skeleton.count(mark) != 1:
                return None
            frame.append(skeleton[start:at])
            start = at + len(mark)
        frame.append(skeleton[start:])
        return frame

    def _split_special(self, text: str) -> Iterable[tuple[str, str]]:
        """The template's own text, cut at the control tokens it holds."""
        if not text:
            return []
        tokens = self.model.tokenize(text, False, True)
        pieces: list[tuple[str, str]] = []
        start = 0
        for t in tokens:
            if int(t) not in self._control:
                continue
            special = self.model.token_text(int(t)).decode("utf-8", errors="replace")
            at = text.find(special, start)
            if at < 0:
                return [("text", text)] if not pieces else pieces + [("text", text[start:])]
            if at > start:
                pieces.append(("text", text[start:at]))
            pieces.append(("special", special))
            start = at + len(special)
        if start < len(text):
            pieces.append(("text", text[start:]))
        return pieces

    def _whole(self, messages: Sequence[Message], prompt: str) -> np.ndarray:
        for i, m in enumerate(messages):
            content = m.get("content")
            if isinstance(content, str) and any(int(t) in self._control
                                                for t in self.model.tokenize(content, False, True)):
                raise ValueError(f"message {i} contains the text of a special token, and {self.template.name} "
                                 "rewrites message text, so it cannot be kept apart as plain text: remove it")
        return self.model.tokenize(prompt, False, True)


def _placeholders(n: int) -> list[str]:
    """n distinct texts that no message holds, to stand in for message contents."""
    nonce = uuid.uuid4().hex[:12]
    return [f"LLAMABATCH{nonce}M{i}X" for i in range(n)]


def _join(frame: list[str], contents: list[str]) -> str:
    out = [frame[0]]
    for content, after in zip(contents, frame[1:]):
        out += [content, after]
    return "".join(out)


def _trimmed(content: str, before: str, after: str) -> str:
    """``content`` with the whitespace the template took from the probe's placeholder
    (rendered as " mark ") taken from it too."""
    if not before.endswith(" "):
        content = content.lstrip()
    if not after.startswith(" "):
        content = content.rstrip()
    return content

