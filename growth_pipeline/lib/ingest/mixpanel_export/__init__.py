"""Mixpanel's Raw Export API (``GET /api/2.0/export``): one project-day to one gzip file.

Pure Python (``requests`` + ``filelock``), no Dagster import.

client.py           export_day: the retries around one day's download, ExportResult, MixpanelExportError
endpoint.py         the regional hosts, which base_url overrides and project ids are valid, the default timeouts
request.py          one request: its parameters and timeouts, what a failed reply means and whether to retry
day_file.py         the response body streamed gzip-compressed to a hidden temp file, then renamed into place
rate_limit.py       RateLimiter: Mixpanel's per-project budget (3 queries/s, 60 queries/h) across processes
service_account.py  ServiceAccount: the credentials, and scrubbing the secret out of any text
"""
