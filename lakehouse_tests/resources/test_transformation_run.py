"""Planning and reading a transformation's inputs (resources/transformation_run.py)."""

from __future__ import annotations

from lakehouse.resources.transformation_run import spark_reads


def test_spark_reads_the_schemes_its_hadoop_has_a_file_system_for(spark):
    assert spark_reads(spark, "file")
    assert spark_reads(spark, "hdfs")  # Hadoop's own: the answer comes from Hadoop, not a list here
    # No S3 connector in a local Spark: Bronze on S3 comes through Arrow there (on Glue and EMR,
    # EMRFS serves s3://, and the emulation gives its jobs S3A for it).
    assert not spark_reads(spark, "s3")
