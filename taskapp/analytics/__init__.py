"""Task analytics: the export of task data to S3, its Glue catalog, and the reports over it.

    catalog   the exported tables (columns, S3 layout, Glue definition): one place for all three uses
    export    DynamoDB tasks -> s3://ANALYTICS_BUCKET/exports/<table>/dt=YYYY-MM-DD/ (Parquet), idempotent
    reports   the report SQL (reports/*.sql, Athena/Trino dialect), scopes, and `run_report`
    engines   where that SQL runs: Athena in AWS, DuckDB over the exported files on the emulator

Nothing here is imported by the taskapp web pages until an analytics page or job needs it.
"""
