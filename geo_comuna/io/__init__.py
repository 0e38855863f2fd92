"""Files in and out: import (pyogrio -> pyproj -> validate -> COPY, one transaction), export."""
