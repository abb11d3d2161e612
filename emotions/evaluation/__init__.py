"""Evaluation: metrics and decision thresholds, score reports and every figure of the stages."""
