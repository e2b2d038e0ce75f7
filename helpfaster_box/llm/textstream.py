"""Turns token bytes into text that is safe to show while it is still growing.

Two things must never reach the client: half of a multi-byte UTF-8 character
(a token can end in the middle of one) and the beginning of a stop string
(the next token may complete it, and then it must not have been shown).
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class TextStream:
    def __init__(self, stop: Sequence[str] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = [s for s in stop if s]
        self._held = ""  # decoded text not yet released
        self.stopped = False  # a stop string was found; nothing more is accepted

    def feed(self, data: bytes) -> str:
        """Add the bytes of one token; return the text that may be shown now."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(data)
        cut = self._find_stop()
        if cut is not None:
            self.stopped = True
            out, self._held = self._held[:cut], ""
            return out
        keep = self._partial_stop_len()
        if keep:
            out, self._held = self._held[:-keep], self._held[-keep:]
        else:
            out, self._held = self._held, ""
        return out

    def finish(self) -> str:
        """Generation ended without a stop string: release everything held back."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(b"", final=True)
        out, self._held = self._held, ""
        return out

    def _find_stop(self) -> int | None:
        found = [i for i in (self._held.find(s) for s in self._stop) if i >= 0]
        return min(found) if found else None

    def _partial_stop_len(self) -> int:
        """Length of the longest tail of the held text that begins some stop string."""
        best = 0
        for s in self._stop:
            for n in range(min(len(s) - 1, len(self._held)), best, -1):
                if self._held.endswith(s[:n]):
                    best = n
                    break
        return best
