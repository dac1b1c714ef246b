"""Character displays for the front panel: the HD44780 driver (`hd44780`) over GPIO pins or a
PCF8574 I2C backpack, and the controller model (`decoder`) that the `sim` backend uses as its
display and that tests use to read back what was drawn."""
