"""The private folder a run writes into: nothing reaches the output folder unless all succeeds."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wheelshade.errors import OutputError


@contextmanager
def staging(out_dir: Path, *, keep: bool) -> Iterator[Path]:
    """A private folder inside ``out_dir``; nothing reaches ``out_dir`` unless all succeeds.

    On failure only what this run made goes: its staging folder, and ``out_dir`` itself
    when this run created it and it is empty again (another process may be writing there).
    Operating-system errors (a full disk, a read-only or missing folder) become OutputError.
    """
    created: list[Path] = []
    parent = out_dir
    while not parent.exists() and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".wheelshade-"))
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder ({exc.strerror})",
            path=str(out_dir),
            hint="choose another --out-dir",
        ) from None
    try:
        yield stage
    except OSError as exc:
        keep = False
        raise OutputError(
            f"cannot write the output ({exc.strerror or exc})",
            path=str(out_dir),
            hint="free some space or choose another --out-dir",
        ) from None
    except BaseException:
        keep = False
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not keep:
            for folder in created:  # innermost first; rmdir leaves a non-empty one alone
                with contextlib.suppress(OSError):
                    folder.rmdir()
