"""FIR coefficient sets from the multiple-constant-multiplication literature (public benchmark data).

Each set is the integer coefficient vector of one FIR filter; as an adder problem it is a
1-input MCM problem: ``y = c * x`` for the column vector ``c`` (a transposed-form FIR computes every
product of the input sample with every coefficient). The sets are transcribed from the compilation
``filtersfromliterature.m`` (M. Faust, NTU Singapore, 2008; as distributed with PAGSuite,
github.com/kammoh/pagsuite, rpag/matlab/helper_functions/filtersfromliterature.m, commit 4b4b731),
which names each set after the first author and year of the paper it comes from (``source`` below
repeats that, nothing more); ``uniq`` and ``wordlength`` are that file's own figures (unique odd
fundamentals, sometimes counting 1; coefficient word length; -1 where it gives none). The values
were copied from that file by a script, not by hand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FirSet:
    name: str
    source: str
    uniq: int  # unique odd non-trivial fundamentals as the compilation states it (-1: not stated)
    wordlength: int
    coeffs: tuple[int, ...]


FIR_SETS: tuple[FirSet, ...] = (
    FirSet("MARTINEZ02_4", "Martinez 2002", 4, 10, (
        105, 621, 815, 831
    )),
    FirSet("DEMPSTER04_H4", "Dempster 2004", 4, 14, (
        10083, 12975, 15103, 12095
    )),
    FirSet("DEMPSTER04_L5", "Dempster 2004", 5, 12, (
        3892, 947, 2486, 1991, 3651
    )),
    FirSet("DEMPSTER02_25", "Dempster 2002", 13, 12, (
        -710, 327, 505, 582, 398, -35, -499, -662, -266, 699, 1943, 2987, 3395, 2987, 1943, 699, -266, -662,
        -499, -35, 398, 582, 505, 327, -710
    )),
    FirSet("JOHANSSON08_30", "Johansson 2008 (random 10-bit constants)", 28, 10, (
        975, 283, 424, 994, 716, 752, 441, 133, 844, 253, 370, 372, 409, 915, 324, 532, 330, 424, 990, 963,
        647, 296, 57, 522, 894, 268, 223, 961, 375, 734
    )),
    FirSet("AKSOY08_NORCHIP_C30", "Aksoy 2008 (NORCHIP)", 14, 13, (
        280, 261, 225, 28, -330, -768, -1128, -1199, -786, 222, 1791, 3723, 5686, 7290, 8192, 8192, 7290,
        5686, 3723, 1791, 222, -786, -1199, -1128, -768, -330, 28, 225, 261, 280
    )),
    FirSet("AKSOY08_NORCHIP_A40", "Aksoy 2008 (NORCHIP)", 19, 13, (
        2321, 390, 238, -41, -419, -851, -1268, -1593, -1747, -1662, -1289, -604, 377, 1602, 2982, 4414,
        5766, 6916, 7752, 8192, 8192, 7752, 6916, 5766, 4414, 2982, 1602, 377, -604, -1289, -1662, -1747,
        -1593, -1268, -851, -419, -41, 238, 390, 2321
    )),
    FirSet("AKSOY08_NORCHIP_H60", "Aksoy 2008 (NORCHIP)", 29, 15, (
        51, -226, -251, -244, -114, 142, 447, 661, 635, 285, -337, -1026, -1470, -1374, -603, 699, 2097,
        2975, 2766, 1216, -1413, -4300, -6243, -6011, -2785, 3487, 11939, 20932, 28471, 32768, 32768, 28471,
        20932, 11939, 3487, -2785, -6011, -6243, -4300, -1413, 1216, 2766, 2975, 2097, 699, -603, -1374,
        -1470, -1026, -337, 285, 635, 661, 447, 142, -114, -244, -251, -226, 51
    )),
    FirSet("AKSOY11_ECCTD_A30", "Aksoy 2011 (ECCTD, filter 1)", 14, 13, (
        2491, -297, -55, 317, 816, 1443, 2189, 3043, 3972, 4933, 5870, 6717, 7426, 7928, 8192, 8192, 7928,
        7426, 6717, 5870, 4933, 3972, 3043, 2189, 1443, 816, 317, -55, -297, 2491
    )),
    FirSet("AKSOY11_ECCTD_A60", "Aksoy 2011 (ECCTD, filter 3)", 29, 15, (
        -2050, 998, 1215, 1465, 1538, 1285, 667, -221, -1160, -1864, -2064, -1604, -510, 978, 2448, 3412,
        3449, 2344, 202, -2530, -5099, -6650, -6371, -3759, 1238, 8139, 15993, 23544, 29492, 32768, 32768,
        29492, 23544, 15993, 8139, 1238, -3759, -6371, -6650, -5099, -2530, 202, 2344, 3449, 3412, 2448,
        978, -510, -1604, -2064, -1864, -1160, -221, 667, 1285, 1538, 1465, 1215, 998, -2050
    )),
    FirSet("ROSA04_49", "Rosa 2004", 12, 9, (
        -1, -1, -1, 0, 2, 1, -3, -6, -4, 3, 10, 7, -7, -20, -17, 8, 35, 32, -11, -66, -74, 12, 174, 334,
        414, 334, 174, 12, -74, -66, -11, 32, 35, 8, -17, -20, -7, 7, 10, 3, -4, -6, -3, 1, 2, 0, -1, -1, -1
    )),
    FirSet("SAMUELI89_60", "Samueli 1989", 27, 13, (
        31, 28, 29, 22, 8, -17, -59, -116, -188, -268, -352, -432, -500, -532, -529, -464, -336, -129, 158,
        526, 964, 1472, 2008, 2576, 3136, 3648, 4110, 4478, 4737, 4868, 4868, 4737, 4478, 4110, 3648, 3136,
        2576, 2008, 1472, 964, 526, 158, -129, -336, -464, -529, -532, -500, -432, -352, -268, -188, -116,
        -59, -17, 8, 22, 29, 28, 31
    )),
    FirSet("LIM83_63", "Lim 1983", 23, 10, (
        3, 6, 8, 7, 1, -9, -19, -24, -20, -5, 15, 31, 33, 16, -15, -46, -59, -42, 4, 61, 99, 92, 29, -71,
        -164, -195, -119, 74, 351, 642, 862, 944, 862, 642, 351, 74, -119, -195, -164, -71, 29, 92, 99, 61,
        4, -42, -59, -46, -15, 16, 33, 31, 15, -5, -20, -24, -19, -9, 1, 7, 8, 6, 3
    )),
    FirSet("MIRZAEI10_41", "Mirzaei 2010 (ex1LS16_41)", -1, 16, (
        157, 100, -264, -147, 430, 135, -666, -31, 960, -217, -1298, 675, 1648, -1463, -1977, 2841, 2245,
        -5779, -2422, 19057, 32768, 19057, -2422, -5779, 2245, 2841, -1977, -1463, 1648, 675, -1298, -217,
        960, -31, -666, 135, 430, -147, -264, 100, 157
    )),
    FirSet("YOSHINO90_64", "Yoshino 1990", 26, 13, (
        39, -22, 51, -30, 46, -22, 18, 4, -30, 39, -85, 65, -126, 61, -133, 10, -93, -88, -15, -215, 76,
        -334, 134, -391, 106, -328, -68, -76, -486, 564, -1712, 4984, 4984, -1712, 564, -486, -76, -68,
        -328, 106, -391, 134, -334, 76, -215, -15, -88, -93, 10, -133, 61, -126, 65, -85, 39, -30, 4, 18,
        -22, 46, -30, 51, -22, 39
    )),
)

BY_NAME = {s.name: s for s in FIR_SETS}
