"""CodeFormer throughput and peak memory per dtype and batch size.

Run: ``PYTHONPATH=. python -m benchmarks.bench_codeformer [--device cpu|cuda] [--repeats 3]
[--batch-sizes 1,4,16] [--dtypes float32,bfloat16,float16] [--weights PATH | --variant NAME]``

Every row runs the full forward (encode, predict, lookup, decode at fidelity ``--w``) on a
batch of distinct synthetic faces, after ``--warmup`` untimed calls (default 1). Columns:
seconds per face (best of ``--repeats`` calls), faces per second, peak memory (CUDA:
``max_memory_allocated`` over the row; CPU: peak resident set size of the process, sampled
every 5 ms, above the level before the row), the speed relative to one face at a time in
float32 measured in the same run (the published pipeline's way), and the share of code
choices equal to float32's. ``cpu s/face`` is process CPU time: on a shared machine,
``--threads 1`` and that column give figures that other load hardly disturbs.
Without ``--weights`` the published-size network gets the synthetic weights (same cost).
``--compile`` runs the rows through the stages compiled as ``--compile`` compiles them
(:func:`vidrestore.models.compiled.compile_stages`); the compiling first call is timed apart,
and ``vs fp32 b1`` is then against the eager float32 network at batch 1, measured first.
``--conv-floor`` times every float32 convolution alone on its own input: the part any
implementation made of the same layers pays, whatever glue it has around them.
Layout: ``auto`` keeps float32 NCHW and puts half precision in channels_last (the policy of
``vidrestore.models.precision.convert``); ``nchw`` / ``nhwc`` force one for comparison.
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vidrestore.models import (
    VARIANTS,
    CodeFormer,
    load_codeformer_checkpoint,
    parse_dtype,
    precision,
)
from vidrestore.models.compiled import compile_stages
from vidrestore.testing.weights import synthetic_codeformer

MiB = 2**20


@dataclass
class Row:
    dtype: torch.dtype
    batch: int
    layout: str
    seconds_per_face: float
    cpu_seconds_per_face: float
    peak_mib: float
    agree: float  # top-1 code agreement with float32, same faces


class RssPeak:
    """Peak resident set size while the block runs (Linux /proc, sampled)."""

    def __init__(self, every: float = 0.005) -> None:
        self.every, self.peak, self.base = every, 0, 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.every)

    def __enter__(self) -> RssPeak:
        gc.collect()
        self.base = self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def above_base_mib(self) -> float:
        return (self.peak - self.base) / MiB


def faces(n: int) -> torch.Tensor:
    """``n`` distinct smooth RGB images in [-1, 1] (upsampled noise, fixed seed)."""
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, 24, 24, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(512, 512), mode="bicubic").clamp(-1, 1)


def base_model(args: argparse.Namespace) -> CodeFormer:
    if args.weights:
        return load_codeformer_checkpoint(args.weights)
    return synthetic_codeformer(VARIANTS[args.variant])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    model: torch.nn.Module, x: torch.Tensor, w: float, repeats: int, warmup: int,
    device: torch.device,
) -> tuple[float, float, float, torch.Tensor]:
    """Wall and process-CPU seconds per face (best of ``repeats`` calls: the least disturbed
    by other work on the machine), peak MiB and the code indices of the batch."""
    x = x.to(device)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x, w=w)
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        times, cpu_times = [], []
        with RssPeak() as rss:
            for _ in range(repeats):
                start, cpu_start = time.perf_counter(), time.process_time()
                logits = model(x, w=w)[1]
                sync(device)
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / MiB
    else:
        peak = rss.above_base_mib
    n = len(x)
    return min(times) / n, min(cpu_times) / n, peak, logits.argmax(-1).cpu()


def conv_seconds(model: CodeFormer, x: torch.Tensor, w: float, device: torch.device) -> float:
    """Seconds per face spent in the convolutions of one forward, each convolution run again
    on its own input and timed alone: a floor for any implementation made of these layers."""
    total = 0.0

    def again(layer: torch.nn.Conv2d, inputs: tuple[torch.Tensor, ...], _out: object) -> None:
        nonlocal total
        sync(device)
        start = time.perf_counter()
        layer._conv_forward(inputs[0], layer.weight, layer.bias)
        sync(device)
        total += time.perf_counter() - start

    hooks = [m.register_forward_hook(again) for m in model.modules()
             if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.inference_mode():
            model(x.to(device), w=w)
    finally:
        for h in hooks:
            h.remove()
    return total / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtypes", default="float32,bfloat16,float16")
    ap.add_argument("--batch-sizes", default=None, help="default: 1,4,16 (CUDA) or 1,2 (CPU)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls before each row")
    ap.add_argument("--w", type=float, default=0.5)
    ap.add_argument("--layout", choices=("auto", "nchw", "nhwc"), default="auto")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="codeformer")
    ap.add_argument("--weights", type=Path, default=None, help="checkpoint instead of synthetic")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (torch default)")
    ap.add_argument("--compile", action="store_true",
                    help="run every row through torch.compile (default mode); the first call, "
                    "which compiles, is reported on its own")
    ap.add_argument("--conv-floor", action="store_true",
                    help="also time the float32 convolutions alone (one batch-1 forward)")
    args = ap.parse_args()

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.batch_sizes or ("1,4,16" if device.type == "cuda" else "1,2")
    batch_sizes = [int(b) for b in sizes.split(",")]
    dtypes = [parse_dtype(d) for d in args.dtypes.split(",")]
    if torch.float32 not in dtypes:
        dtypes.insert(0, torch.float32)  # the reference for the ratio and the code agreement
    x = faces(max(batch_sizes))
    source = str(args.weights) if args.weights else f"{args.variant}, synthetic weights"
    hw = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{torch.get_num_threads()} threads, {os.cpu_count()} logical CPUs")
    print(f"CodeFormer ({source}) on {device} ({hw}), torch {torch.__version__}, "
          f"w={args.w}, warmup={args.warmup}, repeats={args.repeats}, layout={args.layout}")

    rows: list[Row] = []
    ref_idx: dict[int, torch.Tensor] = {}
    eager_base = None
    if args.compile:
        model = base_model(args).to(device)
        eager_base, _, _, eager_idx = measure(model, x[:1], args.w, args.repeats, args.warmup,
                                              device)
        print(f"  eager float32 batch 1: {eager_base:.3f} s/face", flush=True)
        del model
    for dt in dtypes:
        model = base_model(args)
        nhwc = None if args.layout == "auto" else args.layout == "nhwc"
        precision.convert(model.to(device), dt, channels_last=nhwc)
        layout = "nhwc" if model.encoder.blocks[0].weight.is_contiguous(
            memory_format=torch.channels_last) else "nchw"
        run: torch.nn.Module = compile_stages(model) if args.compile else model
        for b in batch_sizes:
            if args.compile:  # the first call compiles; timed apart from the rows
                start = time.perf_counter()
                with torch.inference_mode():
                    run(x[:b].to(device), w=args.w)
                sync(device)
                print(f"  torch.compile {str(dt).removeprefix('torch.')} batch {b}: first call "
                      f"{time.perf_counter() - start:.1f} s", flush=True)
            spf, cpu, peak, idx = measure(
                run, x[:b], args.w, args.repeats, args.warmup, device
            )
            if dt == torch.float32:
                ref_idx[b] = idx
            agree = (idx == ref_idx[b]).float().mean().item()
            rows.append(Row(dt, b, layout, spf, cpu, peak, agree))
            print(f"  measured {str(dt).removeprefix('torch.')} batch {b}: {spf:.3f} s/face",
                  flush=True)
        if args.conv_floor and dt == torch.float32:
            conv = conv_seconds(model, x[:1], args.w, device)
            whole = next(r.seconds_per_face for r in rows if r.dtype == dt)
            print(f"  float32 convolutions alone: {conv:.3f} s/face, "
                  f"{conv / whole:.0%} of the forward ({whole:.3f} s/face at batch "
                  f"{batch_sizes[0]}); the rest: {whole - conv:.3f} s/face", flush=True)
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    base = next(r.seconds_per_face for r in rows if r.dtype == torch.float32 and r.batch == 1) \
        if 1 in batch_sizes else rows[0].seconds_per_face
    if eager_base is not None:
        base = eager_base
        if 1 in ref_idx:
            same = (ref_idx[1] == eager_idx).float().mean().item()
            print(f"  compiled float32 batch 1 codes equal to eager: {same:.1%}")
    print()
    print(f"{'dtype':<9} {'batch':>5} {'layout':>6} {'s/face':>8} {'cpu s/face':>10} "
          f"{'faces/s':>8} {'peak MiB':>9} {'vs fp32 b1':>10} {'codes = fp32':>12}")
    for r in rows:
        print(f"{str(r.dtype).removeprefix('torch.'):<9} {r.batch:>5} {r.layout:>6} "
              f"{r.seconds_per_face:>8.3f} {r.cpu_seconds_per_face:>10.3f} "
              f"{1 / r.seconds_per_face:>8.3f} {r.peak_mib:>9.0f} "
              f"{base / r.seconds_per_face:>9.2f}x {r.agree:>11.1%}")


if __name__ == "__main__":
    main()
