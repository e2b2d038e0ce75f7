"""A GGUF model's tokenizer and chat template without its weights.

Used with an external inference engine (remote.py, remote_embedder.py): the box
still counts tokens for its passage budget and chunk sizes, and renders the
prompt text, but the weights live on the server. `Llama(vocab_only=True)` reads
only the vocabulary and metadata: 0.1 s and ~10 MB for SmolLM2-135M, against
~0.3 s and ~100 MB for the whole model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter


class LocalTokenizer:
    """Thread-safe token counter and chat renderer for one GGUF file."""

    def __init__(self, model_path: str) -> None:
        logger = logging.getLogger("llama-cpp-python")
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)
        self._lock = threading.Lock()
        self._llama = llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False)
        template = self._llama.metadata.get("tokenizer.chat_template")
        self.template: str | None = template
        self._formatter: Jinja2ChatFormatter | None = None
        if template:
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._piece(self._llama.token_eos()),
                bos_token=self._piece(self._llama.token_bos()),
                add_generation_prompt=True,
            )

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", "replace")

    def count(self, text: str, *, add_bos: bool = False) -> int:
        with self._lock:
            return len(self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def format_chat(self, messages: Sequence[dict[str, Any]]) -> str:
        if self._formatter is None:
            from helpfaster_box.llm.engine import CHATML

            return self.render(CHATML, messages)
        return self._formatter(messages=list(messages)).prompt  # type: ignore[arg-type]

    @staticmethod
    def render(template: str, messages: Sequence[dict[str, Any]]) -> str:
        formatter = Jinja2ChatFormatter(
            template=template, eos_token="", bos_token="", add_generation_prompt=True
        )
        return formatter(messages=list(messages)).prompt  # type: ignore[arg-type]

    def close(self) -> None:
        with self._lock:
            self._llama.close()
