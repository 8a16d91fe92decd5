"""Read a Cordon lake with one engine and compare its flows and byte sums
per group pair with `cordon flows topology --output json`.

usage: check.py ENGINE LAKE_DIR TOPOLOGY_JSON PROBE_IP
ENGINE: duckdb, pyarrow or pyspark. Exit 1 with the differences.

   or: check.py documents LAKE_DIR SOURCE ID_COLUMN ATTACKS_COLUMN
prints {"rows", "ids", "t1199"} of a findings or incidents class read by
DuckDB: rows, distinct ids (finding_info.uid, metadata.uid), attacks
citing T1199."""

import json
import sys
from collections import defaultdict

if sys.argv[1] == "documents":
    import duckdb

    lake, source, id_column, attacks = sys.argv[2:6]
    scan = f"read_parquet('{lake}/ext/{source}/*/*/*/*.parquet', hive_partitioning=true)"
    rows, ids = duckdb.sql(
        f"SELECT count(*), count(DISTINCT t.{id_column}) FROM {scan} t"
    ).fetchall()[0]
    (t1199,) = duckdb.sql(
        f"""SELECT count(*) FROM (SELECT unnest(t.{attacks}) AS a FROM {scan} t)
            WHERE a.technique.uid = 'T1199'"""
    ).fetchall()[0]
    print(json.dumps({"rows": rows, "ids": ids, "t1199": t1199}))
    sys.exit(0)

engine, lake, topology_file, probe = sys.argv[1:5]
root = f"{lake}/ext/cordon-network-activity"

expected = defaultdict(lambda: [0, 0, 0])
for edge in json.load(open(topology_file)):
    e = expected[(edge["src_group"], edge["dst_group"])]
    e[0] += edge["flows"]
    e[1] += edge["bytes_out"]
    e[2] += edge["bytes_in"]

got = {}
if engine == "duckdb":
    import duckdb

    scan = f"read_parquet('{root}/*/*/*/*.parquet', hive_partitioning=true)"
    rows = duckdb.sql(
        f"""SELECT unmapped.cordon.src_group, unmapped.cordon.dst_group, count(*),
                   sum(traffic.bytes_out), sum(traffic.bytes_in)
            FROM {scan} GROUP BY 1, 2"""
    ).fetchall()
    probed = duckdb.sql(
        f"SELECT count(*), min(eventDay), min(region) FROM {scan} WHERE src_endpoint.ip = '{probe}'"
    ).fetchall()[0]
elif engine == "pyarrow":
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    data = ds.dataset(root, format="parquet", partitioning="hive")
    table = data.to_table(
        columns={
            "src": pc.field("unmapped", "cordon", "src_group"),
            "dst": pc.field("unmapped", "cordon", "dst_group"),
            "out": pc.field("traffic", "bytes_out"),
            "in": pc.field("traffic", "bytes_in"),
        }
    )
    grouped = table.group_by(["src", "dst"]).aggregate(
        [("out", "count"), ("out", "sum"), ("in", "sum")]
    )
    rows = [
        (r["src"], r["dst"], r["out_count"], r["out_sum"], r["in_sum"])
        for r in grouped.to_pylist()
    ]
    hits = data.to_table(
        columns=["eventDay", "region"],
        filter=pc.field("src_endpoint", "ip") == probe,
    )
    probed = (hits.num_rows, min(hits.column("eventDay").to_pylist() or [None]), None)
elif engine == "pyspark":
    import os

    # Local mode on loopback only.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("cordon-lake-check")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.read.parquet(root)
    rows = [
        tuple(r)
        for r in frame.groupBy(
            F.col("unmapped.cordon.src_group"), F.col("unmapped.cordon.dst_group")
        )
        .agg(F.count("*"), F.sum("traffic.bytes_out"), F.sum("traffic.bytes_in"))
        .collect()
    ]
    hits = frame.where(F.col("src_endpoint.ip") == probe)
    probed = (hits.count(), None, None)
    spark.stop()
else:
    sys.exit(f"unknown engine {engine}")

for src, dst, flows, out, inn in rows:
    got[(src, dst)] = [int(flows), int(out or 0), int(inn or 0)]

wrong = []
for key in sorted(set(expected) | set(got)):
    if expected.get(key) != got.get(key):
        wrong.append(f"{key}: topology {expected.get(key)} lake {got.get(key)}")
if wrong:
    print(f"{engine}: {len(wrong)} group pairs differ:\n" + "\n".join(wrong[:20]))
    sys.exit(1)
if not probed[0]:
    print(f"{engine}: no flow from {probe} found by src_endpoint.ip")
    sys.exit(1)
print(
    json.dumps(
        {
            "engine": engine,
            "pairs": len(got),
            "flows": sum(v[0] for v in got.values()),
            "probe_rows": probed[0],
        }
    )
)
