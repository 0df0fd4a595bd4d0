// Package report writes findings: the Timesketch NDJSON agent forms, JSON,
// and readable text and Markdown reports.
package report
