"""Evaluation: OCR, metrics, scoring, the HTML report, rejection sampling, checkpoint evaluation."""
