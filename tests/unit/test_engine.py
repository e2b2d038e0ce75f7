"""The inference engine with the real chat model (SmolLM2-135M, temperature 0).

Assertions are on structure and on equality with llama-cpp-python's own
`Llama.create_completion`, never on the model's prose. One thread everywhere:
OpenMP's spin-waiting makes two threads on two busy cores many times slower, and
the suite must not depend on what else the machine is running.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpfaster_box.llm.engine import (
    EngineClosed,
    EngineError,
    EngineOverloaded,
    InferenceEngine,
    PromptTooLong,
)
from helpfaster_box.llm.fairqueue import FairQueue, QueueFull
from helpfaster_box.llm.textstream import TextStream

pytestmark = pytest.mark.models

MODEL = Path(__file__).resolve().parents[2] / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def require_model() -> None:
    # A missing model is a failed install, not a reason to skip: say how to fix it.
    assert MODEL.exists(), f"chat model not installed: {MODEL}; run ./install.sh"


needs_model = pytest.mark.usefixtures("require_model")
T = TypeVar("T")

PROMPTS = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite a haiku about snow.<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a small village,",
]
INSTRUCTIONS = (
    "You are the support assistant of Acme Widgets. Answer only from the documentation. "
    "Be brief and polite. If you do not know, say so and offer a human agent. "
) * 5


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


async def collect(engine: InferenceEngine, **kwargs: Any) -> tuple[str, Any]:
    gen = engine.generate(**{"tenant": "t", "temperature": 0.0, **kwargs})
    text = await gen.text()
    return text, gen.stats


def make_engine(**kwargs: Any) -> InferenceEngine:
    engine = InferenceEngine(str(MODEL), n_threads=1, **kwargs)
    engine.start()
    return engine


@pytest.fixture(scope="module")
def engine() -> Iterator[InferenceEngine]:
    e = make_engine(n_ctx=2048, max_sequences=4, queue_size=32)
    yield e
    e.close()


@pytest.fixture(scope="module")
def serial() -> Iterator[InferenceEngine]:
    """One sequence at a time: admission order is observable as finishing order."""
    e = make_engine(n_ctx=512, max_sequences=1, queue_size=8)
    yield e
    e.close()


@pytest.fixture(scope="module")
def reference() -> Iterator[Callable[..., str]]:
    from llama_cpp import Llama

    llama = Llama(str(MODEL), n_ctx=2048, n_threads=1, n_threads_batch=1, verbose=False)

    def complete(prompt: str, max_tokens: int, **kwargs: Any) -> str:
        out = llama.create_completion(prompt, temperature=0, max_tokens=max_tokens, **kwargs)
        return out["choices"][0]["text"]  # type: ignore[index]

    yield complete
    llama.close()


# -- pure parts --------------------------------------------------------------------


def test_text_stream_holds_back_partial_utf8_and_stop_prefixes() -> None:
    s = TextStream(stop=["\nUser:"])
    euro = "€".encode()
    assert s.feed(b"price: 5" + euro[:2]) == "price: 5"  # half a character stays back
    assert s.feed(euro[2:] + b" ok\nUs") == "€ ok"  # "\nUs" may begin the stop string
    assert s.feed(b"ual") == "\nUsual"  # it did not
    assert s.feed(b"\nUser: hi") == ""
    assert s.stopped and s.finish() == ""
    tail = TextStream()
    assert tail.feed(euro[:1]) == "" and tail.finish() == "\ufffd"


def test_fair_queue_prefers_idle_tenants_and_caps_one_tenant() -> None:
    class Req:
        def __init__(self, tenant: str, name: str) -> None:
            self.tenant, self.name = tenant, name

    q: FairQueue[Req] = FairQueue(capacity=8, per_tenant=6)
    a = [Req("a", f"a{i}") for i in range(6)]
    for r in a:
        q.put(r)
    with pytest.raises(QueueFull):
        q.put(Req("a", "a6"))
    q.put(b := Req("b", "b0"))
    first = q.peek()
    assert first is a[0]
    q.pop(first)
    # a was just served and has one decoding; b has none
    assert q.peek(lambda t: 1 if t == "a" else 0) is b
    assert q.peek() is b  # least recently served wins even without activity counts
    assert q.remove(a[3]) and not q.remove(a[3])
    assert len(q) == 5


# -- with the model ----------------------------------------------------------------


@needs_model
def test_generation_yields_text_and_stats(engine: InferenceEngine) -> None:
    prompt = engine.format_chat([{"role": "user", "content": "Say hello."}])
    assert prompt.endswith("<|im_start|>assistant\n")

    async def go() -> tuple[list[str], Any]:
        gen = engine.generate(tenant="org_a", prompt=prompt, max_tokens=12, temperature=0)
        pieces = [p async for p in gen]
        return pieces, gen.stats

    pieces, stats = run(go)
    assert pieces and all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces).strip()
    assert stats.prompt_tokens == engine.count_tokens(prompt)
    assert 1 <= stats.completion_tokens <= 12
    assert stats.finish_reason in ("stop", "length")
    assert 0 <= stats.queue_s <= stats.ttft_s <= stats.total_s


@needs_model
def test_max_tokens_is_respected(engine: InferenceEngine) -> None:
    text, stats = run(lambda: collect(engine, prompt=PROMPTS[2], max_tokens=5))
    assert stats.completion_tokens <= 5
    assert stats.finish_reason == "length"  # a story opening does not end in 5 tokens
    assert text


@needs_model
def test_stop_string_ends_generation_and_is_not_emitted(engine: InferenceEngine) -> None:
    full, _ = run(lambda: collect(engine, prompt=PROMPTS[2], max_tokens=24))
    words = full.split()
    stop = " " + words[3]  # a string the model is known to produce at this point
    cut = full.index(stop)

    async def go() -> tuple[list[str], Any]:
        gen = engine.generate(
            tenant="t", prompt=PROMPTS[2], max_tokens=24, temperature=0, stop=["\n\n\n", stop]
        )
        return [p async for p in gen], gen.stats

    pieces, stats = run(go)
    assert "".join(pieces) == full[:cut]
    assert stats.finish_reason == "stop"


@needs_model
def test_greedy_output_matches_llama_create_completion(
    engine: InferenceEngine, reference: Callable[..., str]
) -> None:
    n = 24
    expected = [reference(p, n) for p in PROMPTS]
    alone = [run(lambda p=p: collect(engine, prompt=p, max_tokens=n, repeat_penalty=1.0))[0] for p in PROMPTS]
    assert alone == expected

    async def together() -> list[tuple[str, Any]]:
        return await asyncio.gather(
            *(collect(engine, prompt=p, max_tokens=n, repeat_penalty=1.0) for p in PROMPTS)
        )

    assert [text for text, _ in run(together)] == expected
    # repeat penalty: same semantics as llama.cpp's penalties sampler in create_completion
    penalised = reference(PROMPTS[2], n, repeat_penalty=1.3)
    assert run(lambda: collect(engine, prompt=PROMPTS[2], max_tokens=n, repeat_penalty=1.3))[0] == penalised


@needs_model
def test_second_request_with_same_prefix_reuses_kv_cache(engine: InferenceEngine) -> None:
    def ask(question: str) -> Any:
        prompt = engine.format_chat(
            [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": question}]
        )
        return run(lambda: collect(engine, prompt=prompt, max_tokens=2))[1]

    first = ask("How do I reset my password?")
    second = ask("Where is my order?")
    instructions = engine.count_tokens(INSTRUCTIONS)
    assert first.cached_prefix_tokens < instructions // 2
    assert second.cached_prefix_tokens >= instructions
    assert second.ttft_s < first.ttft_s


@needs_model
def test_prefix_borrowed_from_a_running_sequence_keeps_outputs_exact(
    engine: InferenceEngine, reference: Callable[..., str]
) -> None:
    def chat(question: str) -> str:
        system = "Revision 7. " + INSTRUCTIONS  # no idle slot holds this yet
        return engine.format_chat(
            [{"role": "system", "content": system}, {"role": "user", "content": question}]
        )

    first, second = chat("How do I reset my password?"), chat("Where is my order?")

    async def go() -> tuple[tuple[str, Any], tuple[str, Any]]:
        running = engine.generate(tenant="t", prompt=first, max_tokens=16, temperature=0, repeat_penalty=1.0)
        head = await running.__anext__()  # its prompt is in the KV cache now
        borrowed = await collect(engine, prompt=second, max_tokens=16, repeat_penalty=1.0)
        return (head + await running.text(), running.stats), borrowed

    (text_a, stats_a), (text_b, stats_b) = run(go)
    assert stats_b.cached_prefix_tokens >= engine.count_tokens(INSTRUCTIONS)
    assert stats_a.cached_prefix_tokens < stats_b.cached_prefix_tokens
    assert text_a == reference(first, 16)
    assert text_b == reference(second, 16)


@needs_model
def test_prompt_too_long_is_rejected_up_front(engine: InferenceEngine) -> None:
    prompt = "word " * 3000

    async def go() -> None:
        await engine.generate(tenant="t", prompt=prompt, max_tokens=10, temperature=0)

    with pytest.raises(PromptTooLong) as err:
        run(go)
    assert err.value.limit == engine.seq_ctx
    assert err.value.prompt_tokens == engine.count_tokens(prompt)


@needs_model
def test_event_loop_keeps_running_while_the_model_decodes(engine: InferenceEngine) -> None:
    prompt = "The history of the region, told in detail. " * 25  # ~250 tokens: one long decode

    async def go() -> tuple[float, Any]:
        gen = engine.generate(tenant="t", prompt=prompt, max_tokens=3, temperature=0)
        task = asyncio.ensure_future(gen.text())
        worst, last = 0.0, time.perf_counter()
        while not task.done():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now
        await task
        return worst, gen.stats

    worst, stats = run(go)
    assert stats.prompt_tokens > 200 and stats.cached_prefix_tokens < 20
    # The prompt is one llama_decode call, most of the time to first token. Were the
    # GIL held through it, the loop would stall for about that long.
    assert worst < min(0.5, stats.ttft_s / 2), (worst, stats.ttft_s)


@needs_model
def test_full_queue_raises_overloaded(serial: InferenceEngine) -> None:
    async def go() -> None:
        gens = [await serial.generate(tenant="a", prompt=PROMPTS[2], max_tokens=200, temperature=0)]
        while serial.status()["active"] == 0:  # the first one decodes; the rest will wait
            await asyncio.sleep(0.01)
        gens += [
            await serial.generate(tenant="a", prompt=PROMPTS[2], max_tokens=4, temperature=0)
            for _ in range(6)
        ]  # this tenant's share of the 8 seats
        with pytest.raises(EngineOverloaded) as err:
            await serial.generate(tenant="a", prompt=PROMPTS[2], max_tokens=4, temperature=0)
        assert err.value.retry_after_s >= 1
        gens += [
            await serial.generate(tenant="b", prompt=PROMPTS[2], max_tokens=4, temperature=0)
            for _ in range(2)
        ]  # the other tenants' seats
        with pytest.raises(EngineOverloaded):
            await serial.generate(tenant="c", prompt=PROMPTS[2], max_tokens=4, temperature=0)
        for gen in gens:
            await gen.aclose()

    run(go)


@needs_model
def test_idle_tenant_is_admitted_before_busy_tenants_backlog(serial: InferenceEngine) -> None:
    async def go() -> list[str]:
        finished: list[str] = []

        async def one(tenant: str, name: str) -> None:
            gen = serial.generate(tenant=tenant, prompt=PROMPTS[0], max_tokens=3, temperature=0)
            await gen.text()
            finished.append(name)

        # tenant names unused by other tests: no service history
        tasks = [asyncio.ensure_future(one("busy", f"a{i}")) for i in range(4)]
        tasks.append(asyncio.ensure_future(one("idle", "b0")))
        await asyncio.gather(*tasks)
        return finished

    order = run(go)
    assert order[0] == "a0" and order[1] == "b0", order


@needs_model
def test_abandoned_generation_frees_its_slot(serial: InferenceEngine) -> None:
    async def next_request_queue_s() -> float:
        _, stats = await collect(serial, prompt=PROMPTS[0], max_tokens=2)
        return stats.queue_s

    async def closed_by_consumer() -> float:
        gen = serial.generate(tenant="t", prompt=PROMPTS[2], max_tokens=400, temperature=0)
        await gen.__anext__()
        await gen.aclose()
        return await next_request_queue_s()

    async def dropped_by_consumer() -> float:
        async for _ in serial.generate(tenant="t", prompt=PROMPTS[2], max_tokens=400, temperature=0):
            break  # the loop drops its only reference
        gc.collect()
        return await next_request_queue_s()

    async def task_cancelled() -> float:
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in serial.generate(tenant="t", prompt=PROMPTS[2], max_tokens=400, temperature=0):
                started.set()

        task = asyncio.ensure_future(consume())
        await started.wait()
        task.cancel()  # what the ASGI server does when the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await task
        return await next_request_queue_s()

    # 400 tokens would hold the only slot for many seconds; a freed slot admits at once.
    for scenario in (closed_by_consumer, dropped_by_consumer, task_cancelled):
        assert run(scenario) < 2.0, scenario.__name__
    assert serial.status()["active"] == 0


@needs_model
def test_timeout_ends_generation_with_reason_timeout() -> None:
    engine = make_engine(n_ctx=1024, max_sequences=1, timeout_s=0.4)
    try:
        _, stats = run(lambda: collect(engine, prompt=PROMPTS[2], max_tokens=900))
        assert stats.finish_reason == "timeout"
        assert stats.completion_tokens < 900
        assert stats.total_s < 10
    finally:
        engine.close()


@needs_model
def test_failing_sequence_does_not_hurt_others_and_dead_worker_fails_everyone() -> None:
    engine = make_engine(n_ctx=1024, max_sequences=2)
    decoder = engine._decoder
    assert decoder is not None
    accept = decoder._accept

    def flaky_accept(slot: Any, index: int) -> None:
        if slot.job.tenant == "boom":
            raise RuntimeError("injected")
        accept(slot, index)

    decoder._accept = flaky_accept  # type: ignore[method-assign]
    try:

        async def one_bad_one_good() -> None:
            bad = await engine.generate(tenant="boom", prompt=PROMPTS[0], max_tokens=8, temperature=0)
            good = await engine.generate(tenant="ok", prompt=PROMPTS[1], max_tokens=8, temperature=0)
            with pytest.raises(EngineError):
                await bad.text()
            assert await good.text()
            assert good.stats.completion_tokens > 0

        run(one_bad_one_good)
        assert engine.running

        def broken_step(timeout_s: float) -> None:
            raise RuntimeError("worker bug")

        decoder.step = broken_step  # type: ignore[method-assign]

        async def all_fail() -> list[BaseException]:
            gens = [
                engine.generate(tenant=f"t{i}", prompt=PROMPTS[0], max_tokens=8, temperature=0)
                for i in range(8)
            ]
            return await asyncio.gather(*(g.text() for g in gens), return_exceptions=True)

        # 3 failing steps of 2 sequences each kill the worker; the last 2 were still waiting
        results = run(all_fail, timeout=20)  # errors, not a hang
        assert all(isinstance(r, EngineError) for r in results), results
        assert not engine.running
        with pytest.raises(EngineClosed):
            run(lambda: collect(engine, prompt=PROMPTS[0], max_tokens=2))
    finally:
        engine.close()


@needs_model
def test_close_fails_waiting_and_running_requests() -> None:
    engine = make_engine(n_ctx=1024, max_sequences=1)

    async def go() -> list[BaseException]:
        gens = [
            await engine.generate(tenant="t", prompt=PROMPTS[2], max_tokens=500, temperature=0)
            for _ in range(3)
        ]
        await gens[0].__anext__()
        closer = threading.Thread(target=engine.close)
        closer.start()
        results = await asyncio.gather(*(g.text() for g in gens), return_exceptions=True)
        closer.join()
        return results

    results = run(go, timeout=20)
    assert all(isinstance(r, EngineClosed) for r in results), results
    with pytest.raises(EngineClosed):
        engine.count_tokens("hi")


@needs_model
def test_unified_kv_lets_one_request_use_the_whole_context_and_waits_for_room() -> None:
    engine = make_engine(n_ctx=256, max_sequences=2, kv_unified=True)
    try:
        assert engine.seq_ctx == 256  # split streams would allow 128 per request

        async def go() -> tuple[Any, Any]:
            first = await engine.generate(tenant="a", prompt=PROMPTS[2], max_tokens=130, temperature=0)
            second = await engine.generate(tenant="b", prompt=PROMPTS[2], max_tokens=130, temperature=0)
            # 2 x (10 + 130) cells do not fit in 256: the second waits for the first
            await first.text()
            assert await second.text()
            return first.stats, second.stats

        first, second = run(go)
        assert second.queue_s >= first.total_s - first.queue_s - 0.1
        assert second.cached_prefix_tokens > 0  # the first one's prompt was still cached
    finally:
        engine.close()
