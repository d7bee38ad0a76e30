"""Sensor physics: the noise models, camera parameters, their calibration and the illumination correction."""
