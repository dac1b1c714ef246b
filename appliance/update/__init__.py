"""Firmware updates: `appliance update` installs a signed RAUC bundle into the other slot and
records what happened on the data partition, for the web page, the USB stick and the LEDs.

The installer runs as root (RAUC needs it); the web page only hands an upload over through
`handoff` and reads the records. See README.md, "Updating the firmware".
"""
