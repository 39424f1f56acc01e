"""Import grids, berths, setbacks and cases from GeoJSON, GeoPackage, Shapefile or CSV.

One file is one transaction: every row is validated first (vectorised), every problem is reported at
once with its row number, and a file with a single bad row writes nothing. Geometries are converted to
WGS84 (from the file's CRS, --crs, or GCJ-02), codes are assigned from the grids, and the layer's data
version is bumped in the same transaction so every dashboard worker rebuilds its cache.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from data.importers.errors import ImportRejected, Problems
from data import audit
from data.store import meta

LAYERS = ("grids", "berths", "setbacks", "cases")

__all__ = ["ImportRejected", "ImportResult", "import_file", "LAYERS"]


@dataclass
class ImportResult:
    layer: str
    path: Path
    format: str
    rows: int
    crs: str
    repaired: int = 0
    replaced: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        parts = [f"Imported {self.rows:,} {self.layer} from {self.path} ({self.format}); "
                 f"source CRS {self.crs}, stored as WGS84 (EPSG:4326)."]
        if self.replaced:
            parts.append(f"Replaced {self.replaced:,} existing {self.layer}.")
        parts.append(f"{self.repaired:,} geometr{'y' if self.repaired == 1 else 'ies'} repaired with make_valid "
                     f"(area change under 1 %).")
        parts.extend(self.notes)
        parts.append(f"Took {self.seconds:.2f} s ({self.rate:,.0f} rows/s); one transaction; "
                     f"the {self.layer} layer version was bumped.")
        return " ".join(parts)


def import_file(engine: Engine, layer: str, path, crs: str | None = None, replace: bool = False) -> ImportResult:
    """Validate and load one file into one layer, all or nothing. Raises ImportRejected with the reasons."""
    from data.importers import layers
    from data.importers.common import convert, resolve_crs
    from data.importers.read import read

    t0 = time.perf_counter()
    if layer not in LAYERS:
        raise ImportRejected(f"unknown layer {layer!r}; choose one of {', '.join(LAYERS)}")
    path = Path(path)
    try:
        src = read(path)
        conv, crs_label = resolve_crs(path, src.crs, crs)
        if len(src.attrs) == 0:
            raise ImportRejected(f"{path}: the file holds no rows; nothing to import")
        geoms = convert(src.geoms, conv)
        problems = Problems(path)
        result = ImportResult(layer, path, src.format, 0, crs_label)
        with engine.begin() as conn:
            # Writing first takes SQLite's write lock at once, so the ids and codes read below stay ours.
            meta.bump(conn, layer)
            getattr(layers, layer)(conn, src, geoms, crs_label, replace, problems, result)
            audit.record(conn, "cli", "import", target=layer,
                         detail={"file": path.name, "rows": result.rows, "replaced": result.replaced,
                                 "crs": crs_label})
    except ImportRejected:
        raise
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise ImportRejected(f"{path}: the database refused the rows ({detail}); nothing was written") from None
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        raise ImportRejected(f"{path}: could not import ({type(exc).__name__}: {exc}); nothing was written") \
            from exc
    result.seconds = time.perf_counter() - t0
    return result
