"""Batch prediction on Spark: the logged pyfunc model as a pandas UDF (``mlflow.pyfunc.spark_udf``) over a
Parquet folder or glob, on any master (``local[*]`` by default, a cluster URL as it is).

Everything that can be checked is checked before a Spark session starts: PySpark and Java present, every
input file readable with the text column (schemas read from the file footers), the model resolved,
downloaded and its files checked against the digest its training run recorded. The driver downloads the
model; MLflow ships it to the executors itself (``SparkFiles`` on a cluster), so the executors need no
access to the tracking store or the artifacts, only the same ``policy-topics`` installed. The output is a
folder of Parquet part files written to a temp folder beside it and renamed when complete.

pyspark is imported here only (the ``spark`` extra).
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy_topics.errors import ConfigError, DataFormatError, DataSourceError, MissingExtraError
from policy_topics.models.predictor import STATUS_CODED
from policy_topics.paths import config_dir

# The struct the UDF returns (field names are the pyfunc output's columns). ``code`` travels as a double
# because MLflow casts the nullable integer column with numpy, which has no missing integer; the
# prediction columns turn it (and an empty text's probability) back into a long / null.
RESULT_TYPE = ("topic string, code double, probability double, status string, "
               "top_topics array<struct<topic: string, code: bigint, probability: double>>")
PREDICTION_COLUMNS = ("topic", "code", "probability", "status", "top_topics")
# PySpark 4.3 warns on every import that it "does not yet fully support pandas >= 3.0.0"; the UDF here
# (Arrow batches of strings in, a struct out) is tested with pandas 3.
_PANDAS_NOTE = "PySpark does not yet fully support"


@dataclass(frozen=True)
class SparkSettings:
    """``conf/spark/default.yaml``: the master and the session's configuration."""

    master: str = "local[*]"
    app_name: str = "policy-topics-predict"
    conf: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, master: str | None = None, path: Path | None = None) -> SparkSettings:
        from omegaconf import OmegaConf

        raw = OmegaConf.to_container(OmegaConf.load(path or config_dir() / "spark" / "default.yaml"))
        assert isinstance(raw, dict)
        return cls(master=str(master or raw.get("master") or cls.master),
                   app_name=str(raw.get("app_name", cls.app_name)), conf=dict(raw.get("conf") or {}))

    @property
    def local(self) -> bool:
        return self.master == "local" or self.master.startswith("local[")


# --- checks before any Spark job -----------------------------------------------------------------


def check_runtime() -> None:
    """PySpark installed and a Java runtime to start its JVM (``JAVA_HOME`` or ``java`` on the PATH)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise MissingExtraError("--engine spark needs PySpark: pip install 'policy-topics[spark]'") from None
    java_home = os.environ.get("JAVA_HOME")
    if java_home and not (Path(java_home) / "bin" / "java").is_file():
        raise ConfigError(f"JAVA_HOME={java_home} has no bin/java; point it at a Java 17+ runtime or unset it")
    if not java_home and shutil.which("java") is None:
        raise ConfigError("no Java found (PySpark needs Java 17 or later): install it (Debian: apt-get install "
                          "openjdk-17-jre-headless, or make system-deps) or set JAVA_HOME")


def input_files(pattern: str) -> list[Path]:
    """The Parquet files of a file, a folder (searched recursively, hidden and ``_`` files skipped, as Spark
    does) or a glob."""
    path = Path(pattern).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        candidates = sorted(path.rglob("*"))
    else:
        candidates = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        if not candidates:
            raise DataSourceError(f"--input {pattern}: no such file, folder or matching files; give a Parquet "
                                  "file, a folder of them or a glob such as 'data/*.parquet'")
        candidates = [f for c in candidates for f in ([c] if c.is_file() else sorted(c.rglob("*")))]
    base = path if path.is_dir() else None
    files = [f for f in candidates if f.is_file() and not _hidden(f, base)]
    if not files:
        raise DataSourceError(f"--input {pattern}: no Parquet files there; give a Parquet file, a folder of "
                              "them or a glob")
    return files


def _hidden(file: Path, base: Path | None) -> bool:
    parts = file.relative_to(base).parts if base is not None else (file.name,)
    return any(p.startswith((".", "_")) for p in parts) or file.suffix in (".crc",)


def check_columns(files: list[Path], column: str) -> list[str]:
    """Read each file's schema (footer only); the input columns. A file that is not Parquet, or lacks the
    text column, is one line naming it."""
    import pyarrow.parquet as pq

    columns: list[str] | None = None
    for file in files:
        try:
            names = pq.read_schema(file).names
        except Exception as exc:
            raise DataFormatError(f"{file} is not a readable Parquet file ({str(exc).splitlines()[0]}); "
                                  "--engine spark reads Parquet only") from None
        if column not in names:
            raise DataFormatError(f"column '{column}' not found in {file.name}; columns found: "
                                  f"{', '.join(names) or 'none'}; pass --column NAME")
        columns = columns or names
    assert columns is not None
    return columns


def check_output(output: Path) -> None:
    if output.exists():
        raise DataSourceError(f"--output {output} exists; remove it or choose a new folder")
    if not output.parent.is_dir():
        raise DataSourceError(f"folder {output.parent} does not exist; create it or choose another --output")


# --- the job -------------------------------------------------------------------------------------


def session(settings: SparkSettings, set_master: bool = True) -> Any:
    """A SparkSession on the settings' master (``set_master=False``: the one spark-submit gave). In local
    mode the Python workers run this interpreter."""
    from pyspark.sql import SparkSession

    if settings.local and set_master:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        quiet = f"ignore:{_PANDAS_NOTE}:FutureWarning"  # the Python workers inherit it
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
    builder = SparkSession.builder.appName(settings.app_name)
    if set_master:
        builder = builder.master(settings.master)
    for key, value in settings.conf.items():
        builder = builder.config(str(key), str(value).lower() if isinstance(value, bool) else str(value))
    warnings.filterwarnings("ignore", message=_PANDAS_NOTE, category=FutureWarning)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def topic_udf(spark: Any, model_uri: str, top_k: int = 3, threshold: float | None = None) -> Any:
    """The model as a Spark UDF returning :data:`RESULT_TYPE` (take it apart with :func:`prediction_columns`)."""
    import mlflow.pyfunc

    params: dict[str, Any] = {"top_k": int(top_k)}
    if threshold is not None:
        params["threshold"] = float(threshold)
    logger = logging.getLogger("mlflow.pyfunc")  # its env_manager="local" advice: the executors run this package
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return mlflow.pyfunc.spark_udf(spark, model_uri, result_type=RESULT_TYPE, env_manager="local",
                                       params=params)
    finally:
        logger.setLevel(level)


def prediction_columns(struct: Any) -> list[Any]:
    """topic and code (long) of coded texts, else null (MLflow writes a missing string as 'None'),
    probability (null for an empty text), status, top_topics."""
    from pyspark.sql import functions as F

    coded = struct["status"] == STATUS_CODED
    return [F.when(coded, struct["topic"]).alias("topic"), F.when(coded, struct["code"].cast("long")).alias("code"),
            F.when(~F.isnan(struct["probability"]), struct["probability"]).alias("probability"),
            struct["status"].alias("status"), struct["top_topics"].alias("top_topics")]


def predict_parquet(spark: Any, model_uri: str, files: list[Path], columns: list[str], column: str,
                    output: Path, top_k: int = 3, threshold: float | None = None) -> int:
    """Code every row of ``files`` and write the input columns (``NAME_input`` where they clash with ours)
    plus the prediction columns as Parquet into ``output`` (temp folder + rename). Returns the row count."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(*[str(f) for f in files])
    count = frame.count()  # from the files' footers
    cores = spark.sparkContext.defaultParallelism
    if frame.rdd.getNumPartitions() < cores:  # e.g. one file of one row group: one task would use one core
        frame = frame.repartition(cores)
    predict = topic_udf(spark, model_uri, top_k, threshold)
    kept = [F.col(f"`{c}`").alias(f"{c}_input" if c in PREDICTION_COLUMNS else c) for c in columns]
    coded = frame.withColumn("_prediction", predict(F.struct(F.col(f"`{column}`").alias("text"))))
    result = coded.select(*kept, *prediction_columns(F.col("_prediction")))
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent))
    try:
        result.write.mode("overwrite").parquet(str(tmp))
        tmp.rename(output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count


def run(model: str | None, input_path: str, output: Path, column: str = "text", master: str | None = None,
        top_k: int = 3, threshold: float | None = None) -> tuple[int, str, str]:
    """``policy-topics predict --engine spark``: check everything, then code ``input_path`` into ``output``.
    Returns the row count, the model loaded and the master."""
    from policy_topics.tracking.registry import load, resolve

    check_runtime()
    files = input_files(input_path)
    columns = check_columns(files, column)
    check_output(output)
    settings = SparkSettings.load(master)
    # Started by spark-submit (its gateway is up): its --master and --conf stand unless --master is given.
    submitted = master is None and "PYSPARK_GATEWAY_PORT" in os.environ
    resolved = resolve(model)
    load(resolved, threshold)  # the driver can fetch it, it is a policy-topics model, its files are intact
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    spark = existing or session(settings, set_master=not submitted)
    used = str(spark.sparkContext.master)
    try:
        count = predict_parquet(spark, resolved.uri, files, columns, column, output, top_k, threshold)
    finally:
        if existing is None:
            spark.stop()
    return count, resolved.loaded, used
