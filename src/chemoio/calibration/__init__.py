"""Calibration to the published trials and validation against them."""
