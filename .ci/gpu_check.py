"""`make gpu-check`: what a CUDA machine can tell that this project's CPU machines cannot, in under 8 minutes.

1. the CUDA-marked tests (`pytest -m cuda`, only the test files that carry the mark);
2. no host synchronisation in steady steps: `torch.cuda.set_sync_debug_mode("error")` around three
   steady `SGDSaI` steps on every default path (multi-tensor, single-tensor, fused, bf16 momentum,
   stochastic rounding, no momentum, a CPU-tensor lr, maximize, and each other `scale` mode);
3. optimizer memory on GPT-2 124M and 355M shapes: bytes of state and the peak above parameters and
   gradients during a step, per optimizer;
4. `sgdsai bench step --device cuda` on GPT-2 124M and 355M shapes, SGD-SaI's paths against torch's
   fused (and foreach) AdamW and SGD.

Each phase has a time limit, and everything lands in one record under `experiments/records/`
(`<date>_gpu-check_<gpu>`), beside the `step_<model>_cuda` records of the benchmark. Exit status 1 if a
phase failed, 0 otherwise; on a machine without CUDA (or without torch) it says so and exits 0.

It runs on the machine's own Python and torch, from a checkout (`src` and `lab/src` on the path, no virtual
environment, no network). Beyond torch it needs pytest (phase 1) and tqdm (phase 4); matplotlib is
optional (without it the benchmark writes records without plots, which `sgdsai bench` can draw
later). Bring missing ones as wheels: `pip install --no-index --find-links WHEELS pytest tqdm`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATHS = (ROOT / "src", ROOT / "lab" / "src")  # the optimizer and the lab, from the checkout
MODELS = ("gpt2-124m", "gpt2-355m")
#: SGD-SaI's paths and torch's references, as `sgdsai bench step --only` names them
BENCH_CANDIDATES = ("sgdsai foreach", "sgdsai single", "sgdsai fused", "adamw fused", "adamw foreach",
                    "sgd fused", "sgd foreach")  # fmt: skip
#: seconds per phase; their sum stays under 8 minutes
LIMITS = {"tests": 120, "bench gpt2-124m": 120, "bench gpt2-355m": 90}

logger = logging.getLogger("gpu-check")


def cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        logger.info("gpu-check: torch is not installed here, so there is no CUDA to check; nothing done")
        return False
    import torch

    if not torch.cuda.is_available():
        logger.info(
            "gpu-check: no CUDA device here (torch %s); nothing to check, exiting 0", torch.__version__
        )
        return False
    return True


def missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def run_child(cmd: list[str], limit: float) -> dict[str, Any]:
    """Run ``cmd`` from the repository root with the checkout first on the path; output goes to the log."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [*map(str, PATHS), os.environ.get("PYTHONPATH")])),
    }
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        code, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code = None
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        out += f"\n(timed out after {limit:.0f} s)"
    tail = out.strip().splitlines()[-15:]
    for line in tail:
        logger.info("    %s", line)
    return {"cmd": cmd, "returncode": code, "seconds": round(time.perf_counter() - start, 1), "tail": tail}


def cuda_tests() -> dict[str, Any]:
    tests = [*(ROOT / "tests").rglob("test_*.py"), *(ROOT / "lab" / "tests").rglob("test_*.py")]
    files = sorted(str(p.relative_to(ROOT)) for p in tests if "mark.cuda" in p.read_text())
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "-rs", *files]
    result = run_child(cmd, LIMITS["tests"])
    result["ok"] = result["returncode"] == 0
    return result


def _params(dtype: Any) -> list[Any]:
    """Tensors of the sizes that choose paths: one above the fused kernel's threshold, small ones, a scalar."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(0)
    shapes = [(512, 256), (1 << 17,), (256,), (64, 3), (1,)]
    return [torch.randn(s, generator=gen).to("cuda", dtype).requires_grad_() for s in shapes]


def sync_configs() -> dict[str, tuple[Any, dict[str, Any]]]:
    """Path name -> (parameter dtype, SGDSaI arguments)."""
    import inspect

    import torch

    from sgdsai import SGDSaI

    configs: dict[str, tuple[Any, dict[str, Any]]] = {
        "foreach (the CUDA default)": (torch.float32, {}),
        "single-tensor": (torch.float32, {"foreach": False}),
        "fused": (torch.float32, {"fused": True}),
        "bf16 momentum": (torch.float32, {"momentum_dtype": torch.bfloat16}),
        "stochastic rounding, bf16 weights": (torch.bfloat16, {"stochastic_rounding": True}),
        "momentum=0": (torch.float32, {"momentum": 0.0}),
        "lr a CPU tensor (as LR schedulers keep it)": (torch.float32, {"lr": torch.tensor(0.1)}),
        "maximize": (torch.float32, {"maximize": True}),
        "bf16 weights, foreach": (torch.bfloat16, {}),
    }
    scale = inspect.signature(SGDSaI.__init__).parameters.get("scale")
    if scale is not None:
        for mode in ("numel",):
            if mode != scale.default:
                configs[f"scale={mode}"] = (torch.float32, {"scale": mode})
    return configs


def sync_check() -> dict[str, Any]:
    """Three steady steps per path under ``set_sync_debug_mode("error")``: any host sync raises."""
    import torch

    from sgdsai import SGDSaI

    results: dict[str, Any] = {}
    for name, (dtype, kwargs) in sync_configs().items():
        params = _params(dtype)
        try:
            opt = SGDSaI(params, **kwargs)
            for step in range(4):
                for p in params:
                    p.grad = torch.randn_like(p)
                if step == 1:  # step 0 measures (one transfer, allowed); 1-3 are steady
                    torch.cuda.synchronize()
                    torch.cuda.set_sync_debug_mode("error")
                opt.step()
            torch.cuda.set_sync_debug_mode("default")
            torch.cuda.synchronize()
            finite = all(bool(torch.isfinite(p).all()) for p in params)
            results[name] = {"ok": finite, "error": None if finite else "non-finite parameters"}
        except Exception as exc:  # a sync raises RuntimeError; anything else is a failure too
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            torch.cuda.set_sync_debug_mode("default")
        logger.info("  %-44s %s", name, "ok" if results[name]["ok"] else results[name]["error"])
    return {"ok": all(r["ok"] for r in results.values()), "paths": results}


def memory_check(model: str) -> dict[str, Any]:
    """Per optimizer: state bytes after three steps, and the peak above parameters + gradients."""
    import torch

    from sgdsai_lab import zoo
    from sgdsai_lab.bench import step

    factories = {
        "sgdsai foreach": zoo.profiled("sgdsai", foreach=True),
        "sgdsai single": zoo.profiled("sgdsai", foreach=False),
        "sgdsai fused": zoo.profiled("sgdsai", fused=True),
        "sgdsai bf16 momentum": zoo.profiled("sgdsai", momentum_dtype=torch.bfloat16),
        "adamw fused": zoo.profiled("adamw", fused=True),
        "sgd fused": zoo.profiled("sgdm", fused=True),
    }
    rows: dict[str, Any] = {}
    for name, build in factories.items():
        named = [
            (n, torch.zeros(s, device="cuda", requires_grad=True))
            for n, s in step.gpt2_shapes(*step.MODELS[model])
        ]
        for _, p in named:
            p.grad = torch.randn_like(p).mul_(1e-3).add_(1e-4)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        try:
            opt = build(named)
            for _ in range(3):
                opt.step()
            torch.cuda.synchronize()
            rows[name] = {
                "state_bytes": torch.cuda.memory_allocated() - base,
                "peak_above_params_and_grads_bytes": torch.cuda.max_memory_allocated() - base,
                "params_bytes": sum(p.numel() * p.element_size() for _, p in named),
            }
            logger.info(
                "  %-22s state %6.3f GiB, peak above params+grads %6.3f GiB",
                name,
                rows[name]["state_bytes"] / 2**30,
                rows[name]["peak_above_params_and_grads_bytes"] / 2**30,
            )
        except Exception as exc:
            rows[name] = {"error": f"{type(exc).__name__}: {exc}"}
            logger.info("  %-22s %s", name, rows[name]["error"])
        finally:
            opt = None
            del named
            torch.cuda.empty_cache()
    return {"ok": all("error" not in r for r in rows.values()), "optimizers": rows}


def bench(model: str, plot: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "sgdsai_lab.cli", "bench", "step", "--model", model, "--device", "cuda",
           "--rounds", "15", "--steps", "5", "--warmup", "3", "--note", "make gpu-check",
           "--only", *BENCH_CANDIDATES]  # fmt: skip
    if not plot:
        cmd.append("--no-plot")
    result = run_child(cmd, LIMITS[f"bench {model}"])
    result["ok"] = result["returncode"] == 0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", nargs="*", default=[], choices=["tests", "sync", "memory", "bench"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not cuda_available():
        return 0
    sys.path[:0] = map(str, PATHS)
    import torch

    from sgdsai_lab import records

    start = time.perf_counter()
    absent = missing("pytest", "tqdm")
    if absent:
        logger.info(
            "gpu-check: not installed here: %s (phases that need them are skipped)", ", ".join(absent)
        )
    results: dict[str, Any] = {}
    if "tests" not in args.skip and "pytest" not in absent:
        logger.info("1. CUDA-marked tests")
        results["tests"] = cuda_tests()
    if "sync" not in args.skip:
        logger.info("2. steady steps under set_sync_debug_mode('error')")
        results["sync"] = sync_check()
    if "memory" not in args.skip:
        for model in MODELS:
            logger.info("3. CUDA memory, %s shapes", model)
            results[f"memory {model}"] = memory_check(model)
    if "bench" not in args.skip and "tqdm" not in absent:
        for model in MODELS:
            logger.info("4. sgdsai bench step --device cuda, %s", model)
            results[f"bench {model}"] = bench(model, plot=not missing("matplotlib"))
    elapsed = time.perf_counter() - start
    gpu = torch.cuda.get_device_name().replace(" ", "-").lower()
    config = {"models": list(MODELS), "bench_candidates": list(BENCH_CANDIDATES), "limits_s": LIMITS,
              "skipped": args.skip, "not_installed": absent, "seconds": round(elapsed, 1)}  # fmt: skip
    root = ROOT / records.RECORDS
    rec = records.bench_record(f"gpu-check_{gpu}", config, results, packages=("pytest", "tqdm", "matplotlib"),
                               root=root, device="cuda")  # fmt: skip
    path = records.write(rec, root)
    failed = [name for name, r in results.items() if not r.get("ok")]
    logger.info("gpu-check: %.0f s, record %s; %s", elapsed, path,
                f"FAILED: {', '.join(failed)}" if failed else "all phases passed")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
