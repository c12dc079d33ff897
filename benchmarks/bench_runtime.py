"""The CPU runtimes against eager PyTorch: seconds per face, output differences, code agreement.

Run: ``PYTHONPATH=. python -m benchmarks.bench_runtime [--batch-sizes 1,2] [--repeats 3]
[--threads N] [--faces 11] [--w 0.5]``

Rows, all on the published-size network with the goldens' synthetic weights: eager PyTorch
float32 (the baseline), each installed CPU runtime in float32, and OpenVINO in bfloat16 where
the CPU has native bfloat16 kernels (only its decoder graphs run in bfloat16; see
``vidrestore.models.runtime.network.BFLOAT16_GRAPHS``). Each row runs the engine's four stages
(encode, predict, lookup, decode at ``--w``) at batch 1 and at the engine's CPU batch size (2).

Columns: seconds per face (best of ``--repeats`` calls; the rows' calls are interleaved round by
round, so a change of load on a shared machine touches every row alike), process CPU seconds
per face (the runtimes' threads are the process's), the speed over eager float32 at the same
batch, the largest absolute difference of the output from eager float32 on the golden input,
and the share of top-1 codes equal to the golden's (golden input) and to eager float32's on
real aligned faces (YuNet on the photos of ``../shared/media``; ``VIDRESTORE_SHARED`` moves
it). ``load s`` is each runtime's first load: graph export, compilation and one untimed call
per batch size (later loads reuse the exported graphs). Targets: float32 at least 1.8x eager,
bfloat16 at least 3x with at least 99 % of the codes equal.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from vidrestore.models import CodeFormer, RestorerDescriptor, precision
from vidrestore.models.runtime import CPU_RUNTIMES, GraphCache, RuntimeNetwork
from vidrestore.models.stages import NetworkStages
from vidrestore.runtimes import installed
from vidrestore.runtimes import version as runtime_version
from vidrestore.testing.weights import synthetic_codeformer

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDRESTORE_SHARED", REPO.parent / "shared"))
YUNET = SHARED / "weights-mirror" / "face_detection_yunet_2026may.onnx"
PHOTOS = ("fr_two_people.jpg", "insightface_t1.jpg", "gfp_whole_00.jpg", "bop_old_g.png")


@dataclass
class Row:
    name: str
    dtype: torch.dtype
    net: NetworkStages
    load_seconds: float = 0.0
    seconds: dict[int, float] = field(default_factory=dict)  # batch -> best s/face
    cpu: dict[int, float] = field(default_factory=dict)
    diff: float = float("nan")
    golden_codes: float = float("nan")
    face_codes: float = float("nan")


def aligned_faces(n: int) -> list[np.ndarray]:
    """Up to ``n`` aligned 512x512 faces from the shared photos (none without ../shared)."""
    if not YUNET.is_file():
        return []
    from vidrestore.faces import FaceOptions, create_detector
    from vidrestore.faces.align import similarity_transform, warp_face

    det = create_detector("yunet", FaceOptions(), model_path=YUNET)
    out = []
    for name in PHOTOS:
        path = SHARED / "media" / name
        if path.is_file():
            img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            out += [warp_face(img, similarity_transform(d.landmarks))
                    for d in det.detect([img])[0]]
    return out[:n]


def forward(net: NetworkStages, x: torch.Tensor, w: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's four stages: the output and the codes."""
    with torch.inference_mode():
        enc = net.encode(x)
        logits = net.predict(enc.lq_feat)
        code = net.lookup(enc.lq_feat, logits=logits)
        return net.decode(code, enc.skips, w), logits.argmax(-1)


def codes(net: NetworkStages, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return net.predict(net.encode(x).lq_feat).argmax(-1)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vidrestore-graphs-") as graphs:
        run(Path(graphs))


def run(graph_folder: Path) -> None:
    """The benchmark, its graphs exported into ``graph_folder``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="threads (default: torch's)")
    ap.add_argument("--faces", type=int, default=11, help="real aligned faces for the codes")
    ap.add_argument("--w", type=float, default=0.5)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch_sizes.split(",")]

    module: CodeFormer = synthetic_codeformer()
    to_input = RestorerDescriptor.of(module).prepare  # the engine's crops-to-input conversion
    golden_dir = SHARED / "golden"
    golden_x = torch.load(golden_dir / "input.pt", weights_only=True)
    golden = torch.load(golden_dir / "golden_w05.pt", weights_only=True)
    faces = aligned_faces(args.faces)
    timing_x = to_input(faces[:max(batches)]) if len(faces) >= max(batches) else (
        golden_x.repeat(max(batches), 1, 1, 1))
    versions = ", ".join(f"{r} {runtime_version(r)}" for r in CPU_RUNTIMES if installed(r))
    print(f"CodeFormer (published size, synthetic weights), torch {torch.__version__}, "
          f"{versions or 'no CPU runtime installed'}; {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} logical CPUs, native bfloat16: {precision.cpu_has_fast_bfloat16()}; "
          f"w={args.w}, repeats={args.repeats}, {len(faces)} real faces", flush=True)

    rows = [Row("torch", torch.float32, module)]
    graphs = GraphCache(graph_folder)
    wanted = [(r, torch.float32) for r in CPU_RUNTIMES if installed(r)]
    if installed("openvino") and precision.cpu_has_fast_bfloat16():
        wanted.append(("openvino", torch.bfloat16))
    for runtime, dt in wanted:
        start = time.perf_counter()
        net = RuntimeNetwork(module, runtime=runtime, precision=dt, cache=graphs)
        for b in batches:  # compile each graph for each batch (OpenVINO) outside the timing
            forward(net, timing_x[:b], args.w)
        rows.append(Row(runtime, dt, net, load_seconds=time.perf_counter() - start))
        print(f"  loaded {runtime} {str(dt).removeprefix('torch.')}: "
              f"{rows[-1].load_seconds:.1f} s", flush=True)

    for b in batches:  # warm-up of the eager rows
        forward(module, timing_x[:b], args.w)
    for rep in range(args.repeats):
        for row in rows:
            for b in batches:
                start, cpu_start = time.perf_counter(), time.process_time()
                forward(row.net, timing_x[:b], args.w)
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
                row.seconds[b] = min(row.seconds.get(b, float("inf")), wall / b)
                row.cpu[b] = min(row.cpu.get(b, float("inf")), cpu / b)
        print(f"  round {rep + 1}/{args.repeats} done", flush=True)

    ref_out, _ = forward(module, golden_x, args.w)
    face_x = to_input(faces) if faces else None
    ref_faces = codes(module, face_x) if face_x is not None else None
    for row in rows:
        out, idx = forward(row.net, golden_x, args.w)
        row.diff = (out - ref_out).abs().max().item()
        row.golden_codes = (idx == golden["top_idx"]).float().mean().item()
        if face_x is not None and ref_faces is not None:
            row.face_codes = (codes(row.net, face_x) == ref_faces).float().mean().item()

    print()
    print(f"{'runtime':<12} {'dtype':<9} {'batch':>5} {'s/face':>7} {'cpu s/face':>10} "
          f"{'vs eager':>8} {'max|diff|':>9} {'codes golden':>12} {'codes faces':>11} "
          f"{'load s':>6}")
    eager = rows[0]
    for row in rows:
        for b in batches:
            print(f"{row.name:<12} {str(row.dtype).removeprefix('torch.'):<9} {b:>5} "
                  f"{row.seconds[b]:>7.3f} {row.cpu[b]:>10.3f} "
                  f"{eager.seconds[b] / row.seconds[b]:>7.2f}x {row.diff:>9.2e} "
                  f"{row.golden_codes:>12.1%} {row.face_codes:>11.1%} {row.load_seconds:>6.1f}")
    print()
    for row in rows[1:]:
        goal = 1.8 if row.dtype == torch.float32 else 3.0
        speed = min(eager.seconds[b] / row.seconds[b] for b in batches)
        agree = min(row.golden_codes, row.face_codes if faces else 1.0)
        ok = speed >= goal and (row.dtype == torch.float32 or agree >= 0.99)
        print(f"target {row.name} {str(row.dtype).removeprefix('torch.')}: >= {goal}x"
              f"{'' if row.dtype == torch.float32 else ', >= 99 % codes'}: {speed:.2f}x, "
              f"{agree:.1%} codes: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
