"""Choosing the next token of one sequence from its logits.

Greedy (temperature 0) runs in numpy: llama.cpp's penalties + greedy samplers
walk the whole 49k-token vocabulary for every token (~0.2 ms here) although a
repeat penalty only touches the last PENALTY_LAST_N tokens. The result is the
same token: the same float32 operations on the same logits, first maximum wins.
Otherwise the chain llama-cpp-python's `Llama` builds for `create_completion`.
"""

from __future__ import annotations

from collections.abc import Iterable

import llama_cpp
import llama_cpp._internals as internals
import numpy as np

from helpfaster_box.llm.jobs import EngineError, Job

PENALTY_LAST_N = 64  # as llama-cpp-python's Llama: repeats among recent *generated* tokens
TOP_K = 40
MIN_P = 0.05


def make_sampler(job: Job, n_vocab: int) -> internals.LlamaSampler | None:
    """A native sampler chain, or None when `greedy_token` does the job."""
    if job.temperature <= 0:
        return None
    sampler = internals.LlamaSampler()
    sampler.add_penalties(n_vocab, PENALTY_LAST_N, job.repeat_penalty, 0.0, 0.0)
    sampler.add_top_k(TOP_K)
    sampler.add_top_p(job.top_p, 1)
    sampler.add_min_p(MIN_P, 1)
    sampler.add_temp(job.temperature)
    sampler.add_dist(job.seed & 0xFFFFFFFF)
    return sampler


def greedy_token(
    ctx: llama_cpp.llama_context_p,
    index: int,
    n_vocab: int,
    repeat_penalty: float,
    recent: Iterable[int],
) -> int:
    """argmax of the logits of batch output `index`, repeat penalty applied."""
    ptr = llama_cpp.llama_get_logits_ith(ctx, index)
    if not ptr:
        raise EngineError(f"no logits for batch index {index}")
    logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,))
    seen_ids = set(recent)
    if repeat_penalty != 1.0 and seen_ids:
        ids = np.fromiter(seen_ids, dtype=np.intc)
        seen = logits[ids]
        penalty = np.float32(repeat_penalty)
        logits = logits.copy()
        logits[ids] = np.where(seen <= 0, seen * penalty, seen / penalty)
    return int(np.argmax(logits))
