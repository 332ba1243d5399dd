"""Regenerate the golden modules. Review the diff line by line before committing it.

    python tests/golden/update.py && git diff tests/golden
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN = {"logreg_gen.py": ROOT / "examples" / "models" / "logreg.py"}


def render(model_path: Path) -> str:
    """The generated source for a model file, as `symdl generate` prints it."""
    from symdl.commands.modelfile import load_model_file

    import symdl as sd

    model = load_model_file(model_path)
    return sd.generate(model["functions"], model["name"])


if __name__ == "__main__":
    for golden, model in GOLDEN.items():
        (HERE / golden).write_text(render(model))
        print(f"wrote {HERE / golden}", file=sys.stderr)
