"""A training job run by the distributed and resume tests (as a script, under torchrun or not).

    python tests/distributed_worker.py MODE OUT_DIR

MODE:
- ``fit``: a tiny IRFA fit with the adversarial term; every rank saves its weights.
- ``equivalence``: float64, no adversarial term, global batch 8; every rank saves its weights.
- ``fault``: rank 1 raises during the first epoch.
- ``kill``: a checkpointed fit that SIGKILLs itself during epoch 3;
- ``resume``: the same fit resumed from that checkpoint; ``full``: the same fit uninterrupted
  (both save their weights).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import prototype_data  # noqa: E402

from irfa_nwb import IRFA  # noqa: E402
from irfa_nwb.estimator import _training  # noqa: E402

TINY = dict(image_size=16, channels=4, width=8, perceptual_weight=0, random_state=0,
            device="cpu")


def data(n=64):
    X, images, groups, _ = prototype_data(n=n)
    return X, images, groups


def save_weights(model, out: Path) -> None:
    rank = int(os.environ.get("RANK", "0"))
    state = {k: v.detach().cpu() for k, v in model.network_.state_dict().items()}
    torch.save({"state": state, "history": model.history_}, out / f"weights_rank{rank}.pt")


def main(mode: str, out: Path) -> None:
    torch.set_num_threads(1)
    X, images, groups = data()
    if mode == "fit":
        model = IRFA(max_iter=2, batch_size=8, discriminator_every=2, unit_groups=groups,
                     checkpoint_path=out / "ckpt.safetensors", **TINY)
        model.fit(X, images)
        save_weights(model, out)
    elif mode == "equivalence":
        torch.set_default_dtype(torch.float64)
        model = IRFA(max_iter=2, batch_size=8, adversarial_weight=0, unit_groups=groups, **TINY)
        model.fit(X, images)
        save_weights(model, out)
    elif mode == "fault":
        original = _training.TrainingStep.__call__

        def failing(self, inputs, target, batch_index=0):
            if int(os.environ.get("RANK", "0")) == 1 and batch_index == 2:
                raise RuntimeError("injected failure on rank 1")
            return original(self, inputs, target, batch_index)

        _training.TrainingStep.__call__ = failing
        IRFA(max_iter=3, batch_size=8, unit_groups=groups, **TINY).fit(X, images)
    elif mode in ("resume", "full"):
        model = IRFA(max_iter=5, batch_size=8, discriminator_every=2, history_size=4,
                     unit_groups=groups, checkpoint_path=out / f"{mode}.safetensors", **TINY)
        resume = out / "ckpt.safetensors" if mode == "resume" else None
        model.fit(X, images, resume_from=resume)
        torch.save({"state": model.network_.state_dict(),
                    "disc": model.discriminator_.state_dict(),
                    "history": model.history_}, out / f"{mode}.pt")
    elif mode == "kill":
        calls = {"n": 0}
        original = _training.TrainingStep.__call__
        per_epoch = len(X) // 8

        def killing(self, inputs, target, batch_index=0):
            calls["n"] += 1
            if calls["n"] == 2 * per_epoch + 3:  # the 3rd batch of epoch 3
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, inputs, target, batch_index)

        _training.TrainingStep.__call__ = killing
        IRFA(max_iter=5, batch_size=8, discriminator_every=2, history_size=4,
             unit_groups=groups, checkpoint_path=out / "ckpt.safetensors", **TINY).fit(X, images)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
