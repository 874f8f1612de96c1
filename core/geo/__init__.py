"""Geography: distances, the PLZ table, geocoding (docs/architecture.md).

The contract names other code and checks call live here: `distance_km`, `plz_centroid`.
"""

from core.geo.distance import distance_km
from core.geo.plz import plz_centroid

__all__ = ["distance_km", "plz_centroid"]
