"""The pipeline: papermill runner, stage contract, layered configuration, submission, ablation."""
