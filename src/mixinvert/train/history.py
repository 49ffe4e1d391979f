"""The run's log: ``log.csv`` and the ``training.png`` plot of its history."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from mixinvert.audio import write_text_atomic
from mixinvert.train.config import LOG_FIELDS, LOG_FILE


def write_log(run_dir: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in LOG_FIELDS})
    write_text_atomic(run_dir / LOG_FILE, buf.getvalue(), overwrite=True)


def plot_history(history: list[dict], path: str | os.PathLike) -> Path:
    """Training loss and validation MRSD per iteration, as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    its = [h["iteration"] for h in history]
    fig, ax1 = plt.subplots(figsize=(7, 4), dpi=100)
    ax1.plot(its, [h["train_loss"] for h in history], "o-", color="tab:blue", label="training loss (MSE)")
    sig2 = [h["sigma"] ** 2 for h in history]
    if all(np.isfinite(sig2)) and any(v > 0 for v in sig2):
        # the loss of answering the unperturbed prediction: below it, the network reads the noise
        ax1.plot(its, sig2, "--", color="tab:blue", alpha=0.5, label="sigma^2 (no-information loss)")
        ax1.legend(loc="lower left", fontsize=8)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("training loss (MSE, normalized units)", color="tab:blue")
    ax1.set_yscale("log")
    ax2 = ax1.twinx()
    ax2.plot(its, [h["valid_mrsd"] for h in history], "s-", color="tab:red", label="validation MRSD")
    ax2.set_ylabel("validation MRSD", color="tab:red")
    ax1.set_title("EAMI embodied self-supervised training")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
