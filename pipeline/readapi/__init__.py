"""The read API over the metrics: the charts a dashboard shows, each one Query (or one GetMetricData).

:mod:`pipeline.readapi.tables` reads the DynamoDB metrics tables (orders and views per hour, top
products, the analytics windows); :mod:`pipeline.readapi.cloudwatch` reads CloudWatch (bad rows per
hour, the consumer's iterator age); :mod:`pipeline.readapi.models` holds the typed rows both return.
Runtime code: no tool imports, usable from a Lambda as from the CLI.
"""
