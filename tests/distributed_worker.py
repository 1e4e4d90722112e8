"""Run by ``torch.distributed.run`` in tests: train a tiny config, save this rank's decoder and loss history."""

import sys
from pathlib import Path

import torch

from sdfkit.config import settings_from_dict
from sdfkit.train import close_distributed, train


def main() -> None:
    import json

    cfg = settings_from_dict(json.loads(Path(sys.argv[1]).read_text()))
    out = Path(sys.argv[2])
    result = train(cfg, out / "run", device="cpu", progress=False)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    torch.save({"state": result.decoder.state_dict(), "history": result.history}, out / f"rank{rank}.pt")
    close_distributed()  # as `sdfkit train` does


if __name__ == "__main__":
    main()
