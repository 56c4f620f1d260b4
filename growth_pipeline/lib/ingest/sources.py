"""Where a customer's export files for one day are, for each kind of source."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from growth_pipeline.config import Customer, LocalFolderSource, MixpanelApiSource, ObjectStorageSource, Paths

EXPORT_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")


class MissingDayError(FileNotFoundError):
    """No export file for a day the customer's configuration says must have data."""


def _is_export(p: Path) -> bool:
    return p.is_file() and p.name.endswith(EXPORT_SUFFIXES) and not p.name.startswith(".")


def day_files(customer: Customer, day: date, paths: Paths) -> tuple[Path, list[Path]]:
    """(source root, the day's files sorted by name). Raises MissingDayError if there are none, unless
    the customer allows empty days."""
    root = customer.source_path(paths)
    src = customer.source
    if isinstance(src, (LocalFolderSource, MixpanelApiSource)):
        where = root
        files = [root / f"{day.isoformat()}{suffix}" for suffix in (".jsonl", ".jsonl.gz")]
        files = [f for f in files if f.is_file()]
        if len(files) > 1:
            raise ValueError(
                f"customer {customer.id!r}, day {day}: both {files[0].name} and {files[1].name} exist in {root}; "
                "keep one, or the day would load twice"
            )
    elif isinstance(src, ObjectStorageSource):
        where = root / src.project_id / "mp_master_event" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        files = sorted(p for p in where.iterdir() if _is_export(p)) if where.is_dir() else []
    else:  # pragma: no cover - the config model admits no other kind
        raise TypeError(type(src))
    if not files and not customer.ingest.allow_empty_days:
        hint = " (run the download first: materialize landed_exports)" if isinstance(src, MixpanelApiSource) else ""
        raise MissingDayError(
            f"customer {customer.id!r}: no export file for {day} in {where}{hint}; "
            "set ingest.allow_empty_days: true in customers.yaml if empty days are expected"
        )
    return root, files
