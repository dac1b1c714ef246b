"""The box's maintenance face: status LEDs, the front panel, the serial console, and
the actions a technician can take from them."""
