"""Every JSON request body passes here before any route sees it: depth, NUL, surrogates.

- Depth: msgspec decodes nesting recursively and at ~1,000 levels raised RecursionError,
  which left as a 500 with a logged traceback (any member key could fill the log with
  them). A body nested deeper than `max_json_depth` (default 32; the deepest real body,
  chatbot settings, is 3) is a 400 naming the limit, whether the decoder gave up or not.
- NUL: a U+0000 in a name or message was stored and echoed (and truncates in C-string
  consumers such as log viewers and CSV tools). Any string or key holding one is a 400 with
  the field path, in every text field at once rather than in each schema.
- A lone UTF-16 surrogate escape (`"\\ud800"`) made msgspec say "Input data was truncated";
  the message now says what is wrong.

The walk is iterative, so it costs no stack, and runs once per body (about 2 ms per MB).
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.types import Empty

from helpfaster_box.errors import Invalid

_ESCAPE = re.compile(rb"\\u([0-9a-fA-F]{4})")


def has_lone_surrogate(body: bytes) -> bool:
    """Whether a \\uD800-\\uDFFF escape lacks its pair (checked only once decoding failed)."""
    codes = [(m.start(), int(m.group(1), 16)) for m in _ESCAPE.finditer(body)]
    i = 0
    while i < len(codes):
        pos, code = codes[i]
        if 0xD800 <= code <= 0xDBFF:
            following = codes[i + 1] if i + 1 < len(codes) else None
            if following and following[0] == pos + 6 and 0xDC00 <= following[1] <= 0xDFFF:
                i += 2
                continue
            return True
        if 0xDC00 <= code <= 0xDFFF:
            return True
        i += 1
    return False


def _field(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path) or "(request body)"


def check_json(value: Any, max_depth: int) -> None:
    """Raise Invalid for nesting beyond max_depth or a NUL in any string or key."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise Invalid(
                    f"{_field(path)} contains a NUL character (U+0000), which text fields may not hold.",
                    field=_field(path),
                )
            continue
        if not isinstance(node, dict | list):
            continue
        if len(path) >= max_depth:
            top = str(path[0]) if path else None
            where = f" (in {top})" if top else ""
            raise Invalid(
                f"The request body is nested too deeply: more than {max_depth} levels{where}.", field=top
            )
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(key, str) and "\x00" in key:
                raise Invalid(
                    f"A key in {_field(path)} contains a NUL character (U+0000).", field=_field(path)
                )
            stack.append((child, [*path, key]))


class CheckedRequest(Request[Any, Any, Any]):
    """Litestar's Request with the checks above on `json()` (which every JSON body goes through)."""

    async def json(self) -> Any:
        if self._json is not Empty or self._connection_state.json is not Empty:
            return await super().json()
        settings = self.app.state.settings
        max_depth = int(settings.max_json_depth)
        try:
            value = await super().json()
        except RecursionError:
            raise Invalid(f"The request body is nested too deeply: more than {max_depth} levels.") from None
        except Exception:
            body = await self.body()
            if has_lone_surrogate(body):
                raise Invalid(
                    "The request body is not valid JSON text: it holds a lone UTF-16 surrogate "
                    "escape (\\ud800-\\udfff without its pair), which is not a Unicode character."
                ) from None
            raise
        check_json(value, max_depth)
        return value
