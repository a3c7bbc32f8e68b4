"""Datasets resource: upload (streamed, checked), background preparation, report and preview."""
