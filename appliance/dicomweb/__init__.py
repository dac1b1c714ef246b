"""DICOMweb over the local store (PS3.18): QIDO-RS search and WADO-RS retrieve of what the box
still holds, served read-only by the web page's `/dicom-web/` router (appliance.web.dicomweb).
Searching uses the Query/Retrieve SCP's matcher (appliance.query), so a QIDO-RS query and a
C-FIND with the same keys find the same things."""
