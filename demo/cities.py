"""A small built-in PLZ universe for demo data when no GeoNames file is available.

About 75 major German cities and big-city districts, one postcode each, with an
approximate centroid (typed from general knowledge, rounded; good to a few km, which is
all a demo needs), the Bundesland code (the two-letter codes the `holidays` package uses
for German subdivisions), the telephone area code without the leading 0, and a rough
weight (population in thousands, split over the districts listed for a city) that makes
big cities get more therapists and patients.

Real deployments load the GeoNames postal-code file instead (core.geo); this list is
only the offline fallback for `python -m demo.data` and fast tests.
"""

from __future__ import annotations

from typing import NamedTuple


class DemoCity(NamedTuple):
    plz: str
    city: str
    state_code: str
    lat: float
    lon: float
    area_code: str  # without the leading 0, as used after +49
    weight: int  # roughly population in thousands


DEMO_CITIES: tuple[DemoCity, ...] = (
    # Berlin (districts)
    DemoCity("10115", "Berlin", "BE", 52.532, 13.385, "30", 460),
    DemoCity("10247", "Berlin", "BE", 52.516, 13.463, "30", 460),
    DemoCity("10961", "Berlin", "BE", 52.492, 13.401, "30", 460),
    DemoCity("12043", "Berlin", "BE", 52.481, 13.435, "30", 460),
    DemoCity("10585", "Berlin", "BE", 52.512, 13.305, "30", 460),
    DemoCity("10437", "Berlin", "BE", 52.540, 13.420, "30", 460),
    DemoCity("12161", "Berlin", "BE", 52.470, 13.330, "30", 460),
    DemoCity("13353", "Berlin", "BE", 52.542, 13.352, "30", 460),
    # Hamburg
    DemoCity("20095", "Hamburg", "HH", 53.551, 10.000, "40", 370),
    DemoCity("20257", "Hamburg", "HH", 53.575, 9.955, "40", 370),
    DemoCity("22081", "Hamburg", "HH", 53.575, 10.035, "40", 370),
    DemoCity("22765", "Hamburg", "HH", 53.552, 9.925, "40", 370),
    DemoCity("21073", "Hamburg", "HH", 53.460, 9.980, "40", 370),
    # München
    DemoCity("80331", "München", "BY", 48.137, 11.575, "89", 300),
    DemoCity("80799", "München", "BY", 48.152, 11.575, "89", 300),
    DemoCity("81667", "München", "BY", 48.130, 11.595, "89", 300),
    DemoCity("80469", "München", "BY", 48.130, 11.568, "89", 300),
    DemoCity("81373", "München", "BY", 48.118, 11.530, "89", 300),
    # Köln
    DemoCity("50667", "Köln", "NW", 50.938, 6.955, "221", 270),
    DemoCity("50733", "Köln", "NW", 50.960, 6.950, "221", 270),
    DemoCity("50937", "Köln", "NW", 50.920, 6.920, "221", 270),
    DemoCity("51103", "Köln", "NW", 50.938, 7.010, "221", 270),
    # Frankfurt am Main
    DemoCity("60311", "Frankfurt am Main", "HE", 50.112, 8.683, "69", 250),
    DemoCity("60318", "Frankfurt am Main", "HE", 50.125, 8.690, "69", 250),
    DemoCity("60594", "Frankfurt am Main", "HE", 50.100, 8.690, "69", 250),
    # Stuttgart
    DemoCity("70173", "Stuttgart", "BW", 48.776, 9.180, "711", 320),
    DemoCity("70199", "Stuttgart", "BW", 48.765, 9.160, "711", 320),
    # Düsseldorf
    DemoCity("40210", "Düsseldorf", "NW", 51.220, 6.790, "211", 310),
    DemoCity("40477", "Düsseldorf", "NW", 51.240, 6.795, "211", 310),
    # Leipzig
    DemoCity("04109", "Leipzig", "SN", 51.340, 12.373, "341", 300),
    DemoCity("04277", "Leipzig", "SN", 51.313, 12.380, "341", 300),
    # Dresden
    DemoCity("01067", "Dresden", "SN", 51.053, 13.735, "351", 280),
    DemoCity("01099", "Dresden", "SN", 51.070, 13.760, "351", 280),
    # Bremen
    DemoCity("28195", "Bremen", "HB", 53.077, 8.805, "421", 285),
    DemoCity("28203", "Bremen", "HB", 53.073, 8.830, "421", 285),
    # Hannover
    DemoCity("30159", "Hannover", "NI", 52.373, 9.737, "511", 270),
    DemoCity("30161", "Hannover", "NI", 52.385, 9.750, "511", 270),
    # Other large and mid-sized cities, one postcode each
    DemoCity("44135", "Dortmund", "NW", 51.513, 7.468, "231", 590),
    DemoCity("45127", "Essen", "NW", 51.455, 7.012, "201", 580),
    DemoCity("90402", "Nürnberg", "BY", 49.450, 11.075, "911", 520),
    DemoCity("47051", "Duisburg", "NW", 51.433, 6.765, "203", 500),
    DemoCity("44787", "Bochum", "NW", 51.481, 7.216, "234", 365),
    DemoCity("42103", "Wuppertal", "NW", 51.258, 7.148, "202", 355),
    DemoCity("33602", "Bielefeld", "NW", 52.021, 8.534, "521", 335),
    DemoCity("53111", "Bonn", "NW", 50.737, 7.098, "228", 330),
    DemoCity("48143", "Münster", "NW", 51.962, 7.626, "251", 320),
    DemoCity("68159", "Mannheim", "BW", 49.489, 8.467, "621", 310),
    DemoCity("76133", "Karlsruhe", "BW", 49.009, 8.400, "721", 305),
    DemoCity("86150", "Augsburg", "BY", 48.366, 10.894, "821", 300),
    DemoCity("65183", "Wiesbaden", "HE", 50.082, 8.240, "611", 280),
    DemoCity("41061", "Mönchengladbach", "NW", 51.195, 6.440, "2161", 260),
    DemoCity("45879", "Gelsenkirchen", "NW", 51.510, 7.100, "209", 260),
    DemoCity("52062", "Aachen", "NW", 50.776, 6.084, "241", 250),
    DemoCity("38100", "Braunschweig", "NI", 52.264, 10.523, "531", 250),
    DemoCity("24103", "Kiel", "SH", 54.322, 10.136, "431", 245),
    DemoCity("09111", "Chemnitz", "SN", 50.834, 12.925, "371", 245),
    DemoCity("06108", "Halle (Saale)", "ST", 51.482, 11.970, "345", 240),
    DemoCity("39104", "Magdeburg", "ST", 52.127, 11.635, "391", 235),
    DemoCity("79098", "Freiburg im Breisgau", "BW", 47.996, 7.850, "761", 230),
    DemoCity("47798", "Krefeld", "NW", 51.333, 6.563, "2151", 225),
    DemoCity("55116", "Mainz", "RP", 49.999, 8.273, "6131", 220),
    DemoCity("23552", "Lübeck", "SH", 53.867, 10.687, "451", 215),
    DemoCity("99084", "Erfurt", "TH", 50.978, 11.030, "361", 215),
    DemoCity("18055", "Rostock", "MV", 54.090, 12.140, "381", 210),
    DemoCity("34117", "Kassel", "HE", 51.316, 9.497, "561", 200),
    DemoCity("14467", "Potsdam", "BB", 52.400, 13.060, "331", 185),
    DemoCity("66111", "Saarbrücken", "SL", 49.234, 6.995, "681", 180),
    DemoCity("26122", "Oldenburg", "NI", 53.141, 8.214, "441", 170),
    DemoCity("49074", "Osnabrück", "NI", 52.279, 8.047, "541", 165),
    DemoCity("69117", "Heidelberg", "BW", 49.410, 8.700, "6221", 160),
    DemoCity("64283", "Darmstadt", "HE", 49.872, 8.651, "6151", 160),
    DemoCity("93047", "Regensburg", "BY", 49.017, 12.097, "941", 155),
    DemoCity("97070", "Würzburg", "BY", 49.794, 9.932, "931", 130),
    DemoCity("37073", "Göttingen", "NI", 51.533, 9.935, "551", 120),
    DemoCity("89073", "Ulm", "BW", 48.399, 9.993, "731", 125),
    DemoCity("07743", "Jena", "TH", 50.928, 11.588, "3641", 110),
    DemoCity("54290", "Trier", "RP", 49.756, 6.641, "651", 110),
    DemoCity("56068", "Koblenz", "RP", 50.356, 7.594, "261", 115),
    DemoCity("19053", "Schwerin", "MV", 53.630, 11.410, "385", 95),
    DemoCity("72070", "Tübingen", "BW", 48.521, 9.057, "7071", 90),
    DemoCity("78462", "Konstanz", "BW", 47.660, 9.175, "7531", 85),
    DemoCity("17489", "Greifswald", "MV", 54.096, 13.381, "3834", 60),
    DemoCity("24937", "Flensburg", "SH", 54.785, 9.437, "461", 90),
    DemoCity("03046", "Cottbus", "BB", 51.760, 14.334, "355", 100),
    DemoCity("94032", "Passau", "BY", 48.574, 13.465, "851", 50),
    DemoCity("96047", "Bamberg", "BY", 49.892, 10.890, "951", 78),
    DemoCity("35037", "Marburg", "HE", 50.810, 8.770, "6421", 77),
    DemoCity("85049", "Ingolstadt", "BY", 48.765, 11.425, "841", 140),
    DemoCity("33098", "Paderborn", "NW", 51.718, 8.755, "5251", 150),
    DemoCity("99423", "Weimar", "TH", 50.980, 11.330, "3643", 65),
)

# Lookups derived from the list (area codes for phone numbers of any postcode).
AREA_CODE_BY_PLZ: dict[str, str] = {c.plz: c.area_code for c in DEMO_CITIES}
WEIGHT_BY_PLZ: dict[str, int] = {c.plz: c.weight for c in DEMO_CITIES}
