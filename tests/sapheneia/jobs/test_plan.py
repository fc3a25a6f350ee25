"""A job's plan reads the source's id column in the job's own process (pyarrow), without Ray:
how many series, and whether the columns the job names are there."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sapheneia.config import load_model_configs
from sapheneia.errors import UnknownColumn
from sapheneia.jobs.pipeline import count_series, source_table
from sapheneia.jobs.spec import JobSpec

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = load_model_configs(ROOT / "configs" / "models")


def spec(**fields: object) -> JobSpec:
    return JobSpec(models=[CONFIGS["seasonal-naive"]], horizon=3, **fields)  # type: ignore[arg-type]


def long_frame(ids: np.ndarray, length: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(ids, length),
            "ds": np.tile(pd.date_range("2024-01-01", periods=length, freq="D"), len(ids)),
            "y": rng.normal(size=len(ids) * length),
        }
    )
    return frame.sample(frac=1.0, random_state=2)  # a series' rows scattered over the file


def reference_hashes(ids: pd.Series) -> np.ndarray:
    """The served path's hash of each distinct id, ids as text, written out with pandas."""
    text = ids.astype(str).drop_duplicates().to_numpy(dtype=object)
    return np.unique(pd.util.hash_array(text))


def test_a_folder_of_parquet_files_with_integer_ids_in_many_row_groups(tmp_path: Path) -> None:
    frame = long_frame(np.arange(1_000, 1_700))
    folder = tmp_path / "in"
    folder.mkdir()
    # Two files of many small row groups: more batches than the count keeps before merging them.
    half = len(frame) // 2
    frame.iloc[:half].to_parquet(folder / "a.parquet", index=False, row_group_size=20)
    frame.iloc[half:].to_parquet(folder / "b.parquet", index=False, row_group_size=20)
    hashes = count_series(source_table(str(folder), spec()), "unique_id")
    assert len(hashes) == 700
    np.testing.assert_array_equal(hashes, reference_hashes(frame["unique_id"]))


def test_a_gzipped_csv_reads_ids_as_text(tmp_path: Path) -> None:
    # "007" and "7" are two series as text; a number column would make them one.
    frame = long_frame(np.array(["007", "7", "a", "b"]))
    path = tmp_path / "in.csv.gz"
    frame.to_csv(path, index=False)
    hashes = count_series(source_table(str(path), spec()), "unique_id")
    np.testing.assert_array_equal(hashes, reference_hashes(frame["unique_id"]))


def test_a_column_the_job_names_but_the_source_lacks_is_named(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    long_frame(np.array(["a"])).rename(columns={"y": "sales"}).to_parquet(path, index=False)
    with pytest.raises(UnknownColumn, match=r"'y' not in the source; its columns are .*'sales'"):
        source_table(str(path), spec())
    assert len(count_series(source_table(str(path), spec(target_column="sales")), "unique_id")) == 1


def footer_reader_actors() -> int:
    import ray._private.state

    return sum(
        a.get("ActorClassName") == "FooterReader" for a in ray._private.state.actors().values()
    )


def test_reading_one_parquet_file_starts_one_footer_reader_not_ray_datas_32(
    tmp_path: Path,
) -> None:
    """Ray Data started 32 footer-reading actors (processes) for every Parquet read: a minute of
    a job's start-up on two cores, whatever its size."""
    import ray

    from sapheneia.jobs.pipeline import FOOTER_READERS_VARIABLE, read_source

    if not ray.is_initialized():  # alone; in the whole suite, the session's cluster
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    frame = long_frame(np.array(["a", "b", "c"]))
    path = tmp_path / "in.parquet"
    frame.to_parquet(path, index=False)
    before = footer_reader_actors()
    ds = read_source(str(path), spec(), files=1)
    assert len(ds.to_pandas()) == len(frame)
    assert footer_reader_actors() - before == 1
    assert FOOTER_READERS_VARIABLE not in os.environ  # for that read only
