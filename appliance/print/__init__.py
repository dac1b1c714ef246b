"""Print Management SCP (PS3.4 Annex H): film session, film box, image box, annotation box,
presentation LUT, printer and print job state per association (`session`, `service`), film
layout and rendering (`layout`, `lut`, `render`), the persisted print spool (`spool`) and the
printer profiles (`profiles`)."""
