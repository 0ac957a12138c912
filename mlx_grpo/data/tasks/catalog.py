"""The function families of `builtin:c-functions` (and its C++ and Python twins).

Each family is one small function: its arguments (typed by kind, see `functions.py`), what
it does, a Python reference (the oracle the hidden tests are computed from, pure, with C's
32-bit semantics where they matter), a C reference written independently of it (valid C11
and C++17; the row's gold answer), and a draw of inputs plus the edge cases every row tests.
Levels: 1 = one expression or a short loop, 2 = a loop over a string, array or bits,
3 = a loop with a condition to get right, 4 = a classic edge case (empty input, k = 0, all
negative, overflow-free modular arithmetic).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Args = tuple[Any, ...]


@dataclass(frozen=True)
class Family:
    name: str
    level: int
    category: str  # arithmetic | string | array | bits
    args: tuple[tuple[str, str], ...]  # (name, kind): int uint ll char str buf arr mut_arr
    returns: str  # int bool uint ll void (void: the buf/mut_arr argument is the result)
    doc: str  # what it does, for both languages
    ref: Callable[..., Any]
    c_src: str
    draw: Callable[[random.Random], Args]
    edges: tuple[Args, ...] = ()
    c_doc: str = ""  # replaces `doc` in C/C++ prompts (in-place results)
    prefix: bool = False  # C returns a new length k; the result is the array's first k


def _ints(rng: random.Random, lo: int, hi: int, n_lo: int, n_hi: int) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(rng.randint(n_lo, n_hi))]


def _word(rng: random.Random, lo: int = 1, hi: int = 7) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(lo, hi)))


def _text(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + " ,.!?-"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))


# ---------------------------------------------------------------- Python references


def max_of_three(a: int, b: int, c: int) -> int:
    return max(a, b, c)


def abs_diff(a: int, b: int) -> int:
    return abs(a - b)


def sum_to_n(n: int) -> int:
    return n * (n + 1) // 2 if n > 0 else 0


def is_even(n: int) -> bool:
    return n % 2 == 0


def clamp(x: int, lo: int, hi: int) -> int:
    return min(max(x, lo), hi)


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def get_bit(x: int, i: int) -> int:
    return (x >> i) & 1


def string_length(s: str) -> int:
    return len(s)


def count_negatives(a: list[int]) -> int:
    return sum(1 for v in a if v < 0)


def sum_array(a: list[int]) -> int:
    return sum(a)


def max_array(a: list[int]) -> int:
    return max(a)


def count_char(s: str, c: str) -> int:
    return s.count(c)


def count_vowels(s: str) -> int:
    return sum(1 for ch in s if ch in "aeiouAEIOU")


def popcount(x: int) -> int:
    return bin(x & 0xFFFFFFFF).count("1")


def digit_sum(n: int) -> int:
    return sum(int(d) for d in str(n))


def reverse_string(s: str) -> str:
    return s[::-1]


def is_leap_year(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def is_palindrome(s: str) -> bool:
    kept = [ch.lower() for ch in s if ch.isascii() and ch.isalnum()]
    return kept == kept[::-1]


def second_largest(a: list[int]) -> int:
    top = max(a)
    return max(v for v in a if v < top)


def reverse_bits(x: int) -> int:
    return int(format(x & 0xFFFFFFFF, "032b")[::-1], 2)


def is_sorted(a: list[int]) -> bool:
    return all(a[i] <= a[i + 1] for i in range(len(a) - 1))


def rotate_left(a: list[int], k: int) -> list[int]:
    if not a:
        return []
    k %= len(a)
    return a[k:] + a[:k]


def count_words(s: str) -> int:
    return len([word for word in s.split(" ") if word])


def is_power_of_two(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def max_subarray_sum(a: list[int]) -> int:
    best = current = a[0]
    for v in a[1:]:
        current = max(v, current + v)
        best = max(best, current)
    return best


def parse_int(s: str) -> int:
    i = 0
    while i < len(s) and s[i] == " ":
        i += 1
    negative = i < len(s) and s[i] == "-"
    if i < len(s) and s[i] in "+-":
        i += 1
    value = 0
    while i < len(s) and s[i] in "0123456789":
        value = value * 10 + int(s[i])
        i += 1
    return -value if negative else value


def longest_run(a: list[int]) -> int:
    best = run = 0
    for i, v in enumerate(a):
        run = run + 1 if i and a[i - 1] == v else 1
        best = max(best, run)
    return best


def binary_gap(x: int) -> int:
    bits = format(x & 0xFFFFFFFF, "b").strip("0")
    return max((len(gap) for gap in bits.split("1")), default=0)


def remove_duplicates(a: list[int]) -> list[int]:
    return [v for i, v in enumerate(a) if i == 0 or a[i - 1] != v]


def power_mod(b: int, e: int, m: int) -> int:
    return pow(b, e, m)


def rotate_bits_left(x: int, k: int) -> int:
    x &= 0xFFFFFFFF
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF if k else x


# ---------------------------------------------------------------- C references

C_SOURCES = {
    "max_of_three": "int max_of_three(int a, int b, int c) {\n  int m = a > b ? a : b;\n"
    "  return m > c ? m : c;\n}",
    "abs_diff": "int abs_diff(int a, int b) { return a > b ? a - b : b - a; }",
    "sum_to_n": "int sum_to_n(int n) {\n  int s = 0;\n  for (int i = 1; i <= n; i++) s += i;\n"
    "  return s;\n}",
    "is_even": "int is_even(int n) { return n % 2 == 0; }",
    "clamp": "int clamp(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }",
    "sign": "int sign(int x) { return (x > 0) - (x < 0); }",
    "get_bit": "int get_bit(unsigned int x, int i) { return (x >> i) & 1u; }",
    "string_length": "int string_length(const char *s) {\n  int n = 0;\n  while (s[n]) n++;\n"
    "  return n;\n}",
    "count_negatives": "int count_negatives(const int *a, int n) {\n  int c = 0;\n"
    "  for (int i = 0; i < n; i++) c += a[i] < 0;\n  return c;\n}",
    "sum_array": "int sum_array(const int *a, int n) {\n  int s = 0;\n"
    "  for (int i = 0; i < n; i++) s += a[i];\n  return s;\n}",
    "max_array": "int max_array(const int *a, int n) {\n  int m = a[0];\n"
    "  for (int i = 1; i < n; i++) if (a[i] > m) m = a[i];\n  return m;\n}",
    "count_char": "int count_char(const char *s, char c) {\n  int k = 0;\n"
    "  for (; *s; s++) k += *s == c;\n  return k;\n}",
    "count_vowels": "int count_vowels(const char *s) {\n  int k = 0;\n  for (; *s; s++) {\n"
    "    char c = *s | 32;\n    k += c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';\n"
    "  }\n  return k;\n}",
    "popcount": "int popcount(unsigned int x) {\n  int k = 0;\n  while (x) { x &= x - 1; k++; }\n"
    "  return k;\n}",
    "digit_sum": "int digit_sum(int n) {\n  int s = 0;\n  while (n > 0) { s += n % 10; n /= 10; }\n"
    "  return s;\n}",
    "reverse_string": "void reverse_string(char *s) {\n  int n = 0;\n  while (s[n]) n++;\n"
    "  for (int i = 0, j = n - 1; i < j; i++, j--) { char t = s[i]; s[i] = s[j]; s[j] = t; }\n}",
    "is_leap_year": "int is_leap_year(int y) {\n"
    "  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;\n}",
    "gcd": "int gcd(int a, int b) {\n  while (b) { int t = a % b; a = b; b = t; }\n  return a;\n}",
    "is_prime": "int is_prime(int n) {\n  if (n < 2) return 0;\n"
    "  for (int d = 2; d <= n / d; d++) if (n % d == 0) return 0;\n  return 1;\n}",
    "is_palindrome": "static int keep(char c) {\n"
    "  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');\n}\n"
    "int is_palindrome(const char *s) {\n  int i = 0, j = 0;\n  while (s[j]) j++;\n  j--;\n"
    "  while (i < j) {\n    if (!keep(s[i])) { i++; continue; }\n"
    "    if (!keep(s[j])) { j--; continue; }\n"
    "    char a = s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i];\n"
    "    char b = s[j] >= 'A' && s[j] <= 'Z' ? s[j] + 32 : s[j];\n"
    "    if (a != b) return 0;\n    i++; j--;\n  }\n  return 1;\n}",
    "second_largest": "int second_largest(const int *a, int n) {\n  int top = a[0];\n"
    "  for (int i = 1; i < n; i++) if (a[i] > top) top = a[i];\n  int found = 0, s = 0;\n"
    "  for (int i = 0; i < n; i++)\n"
    "    if (a[i] < top && (!found || a[i] > s)) { s = a[i]; found = 1; }\n  return s;\n}",
    "reverse_bits": "unsigned int reverse_bits(unsigned int x) {\n  unsigned int r = 0;\n"
    "  for (int i = 0; i < 32; i++) { r = (r << 1) | (x & 1u); x >>= 1; }\n  return r;\n}",
    "is_sorted": "int is_sorted(const int *a, int n) {\n"
    "  for (int i = 1; i < n; i++) if (a[i - 1] > a[i]) return 0;\n  return 1;\n}",
    "rotate_left": "void rotate_left(int *a, int n, int k) {\n  if (n <= 0) return;\n"
    "  k %= n;\n  for (int r = 0; r < k; r++) {\n    int first = a[0];\n"
    "    for (int i = 1; i < n; i++) a[i - 1] = a[i];\n    a[n - 1] = first;\n  }\n}",
    "count_words": "int count_words(const char *s) {\n  int k = 0, in = 0;\n  for (; *s; s++) {\n"
    "    if (*s == ' ') in = 0;\n    else if (!in) { in = 1; k++; }\n  }\n  return k;\n}",
    "is_power_of_two": "int is_power_of_two(unsigned int x) { return x && !(x & (x - 1)); }",
    "max_subarray_sum": "int max_subarray_sum(const int *a, int n) {\n"
    "  int best = a[0], cur = a[0];\n  for (int i = 1; i < n; i++) {\n"
    "    cur = cur + a[i] > a[i] ? cur + a[i] : a[i];\n    if (cur > best) best = cur;\n  }\n"
    "  return best;\n}",
    "parse_int": "int parse_int(const char *s) {\n  while (*s == ' ') s++;\n"
    "  int neg = *s == '-';\n  if (*s == '-' || *s == '+') s++;\n  int v = 0;\n"
    "  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');\n  return neg ? -v : v;\n}",
    "longest_run": "int longest_run(const int *a, int n) {\n  int best = 0, run = 0;\n"
    "  for (int i = 0; i < n; i++) {\n    run = (i > 0 && a[i] == a[i - 1]) ? run + 1 : 1;\n"
    "    if (run > best) best = run;\n  }\n  return best;\n}",
    "binary_gap": "int binary_gap(unsigned int x) {\n  int best = 0, zeros = -1;\n"
    "  for (; x; x >>= 1) {\n    if (x & 1u) { if (zeros > best) best = zeros; zeros = 0; }\n"
    "    else if (zeros >= 0) zeros++;\n  }\n  return best;\n}",
    "remove_duplicates": "int remove_duplicates(int *a, int n) {\n  int k = 0;\n"
    "  for (int i = 0; i < n; i++) if (k == 0 || a[k - 1] != a[i]) a[k++] = a[i];\n"
    "  return k;\n}",
    "power_mod": "long long power_mod(long long b, long long e, long long m) {\n"
    "  long long r = 1 % m;\n  b %= m;\n  while (e > 0) {\n    if (e & 1) r = r * b % m;\n"
    "    b = b * b % m;\n    e >>= 1;\n  }\n  return r;\n}",
    "rotate_bits_left": "unsigned int rotate_bits_left(unsigned int x, int k) {\n"
    "  if (k == 0) return x;\n  return (x << k) | (x >> (32 - k));\n}",
}


def _family(name: str, level: int, category: str, args: str, returns: str, doc: str,
            draw: Callable[[random.Random], Args], edges: tuple[Args, ...] = (),
            **more: Any) -> Family:  # fmt: skip
    parsed = tuple(tuple(a.split(":")) for a in args.split())
    ref = globals()[name]
    return Family(name, level, category, parsed, returns, doc, ref, C_SOURCES[name], draw,
                  edges, **more)  # type: ignore[arg-type]  # fmt: skip


def _palindrome_or_not(rng: random.Random) -> Args:
    half = _word(rng, 0, 5)
    if rng.random() < 0.5:
        return (rng.choice(["", " ", ", "]).join([half, half[::-1].upper()]),)
    return (_text(rng),)


def _spaced_words(rng: random.Random) -> Args:
    gaps = [" " * rng.randint(1, 3) for _ in range(6)]
    words = [_word(rng) for _ in range(rng.randint(0, 5))]
    return ("".join(g + w for g, w in zip(gaps, words)) + gaps[-1] * rng.randint(0, 1),)


def _number_text(rng: random.Random) -> Args:
    sign_ = rng.choice(["", "", "-", "+"])
    tail = rng.choice(["", "", " apples", "x9", ".5"])
    return (" " * rng.randint(0, 3) + sign_ + str(rng.randint(0, 10**6)) + tail,)


def _distinct_pair_array(rng: random.Random) -> Args:
    a = _ints(rng, -50, 50, 2, 8)
    return (a,) if len(set(a)) > 1 else (a + [a[0] + 1],)


def _runs(rng: random.Random) -> Args:
    return ([v for v in _ints(rng, 0, 3, 0, 6) for _ in range(rng.randint(1, 4))],)


def _sorted_dups(rng: random.Random) -> Args:
    return (sorted(_ints(rng, -5, 5, 0, 10)),)


def _bits(rng: random.Random) -> int:
    return rng.choice([rng.getrandbits(32), rng.getrandbits(8), 1 << rng.randint(0, 31)])


FAMILIES: tuple[Family, ...] = (
    _family("max_of_three", 1, "arithmetic", "a:int b:int c:int", "int",
            "returns the largest of a, b and c.",
            lambda r: (r.randint(-99, 99), r.randint(-99, 99), r.randint(-99, 99)),
            ((3, 3, 3), (-5, -2, -9))),
    _family("abs_diff", 1, "arithmetic", "a:int b:int", "int",
            "returns the absolute difference |a - b|.",
            lambda r: (r.randint(-1000, 1000), r.randint(-1000, 1000)), ((4, 4), (-3, 5))),
    _family("sum_to_n", 1, "arithmetic", "n:int", "int",
            "returns 1 + 2 + ... + n, or 0 when n <= 0.",
            lambda r: (r.randint(1, 2000),), ((0,), (1,), (-4,))),
    _family("is_even", 1, "arithmetic", "n:int", "bool",
            "tells whether n is even (negative numbers included).",
            lambda r: (r.randint(-500, 500),), ((0,), (-3,), (-8,))),
    _family("clamp", 1, "arithmetic", "x:int lo:int hi:int", "int",
            "returns x limited to the range [lo, hi] (lo <= hi).",
            lambda r: (r.randint(-50, 50), r.randint(-30, 0), r.randint(0, 30)),
            ((5, 5, 5), (-100, -10, 10), (100, -10, 10))),
    _family("sign", 1, "arithmetic", "x:int", "int",
            "returns -1 if x is negative, 0 if x is zero, 1 if x is positive.",
            lambda r: (r.randint(-10**6, 10**6),), ((0,), (-1,), (1,))),
    _family("get_bit", 1, "bits", "x:uint i:int", "int",
            "returns bit i of x (0 or 1; bit 0 is the least significant, 0 <= i < 32).",
            lambda r: (_bits(r), r.randint(0, 31)), ((0, 0), (2147483648, 31), (5, 1))),
    _family("string_length", 1, "string", "s:str", "int",
            "returns the number of characters in s (without using strlen).",
            lambda r: (_text(r),), (("",), ("a",))),
    _family("count_negatives", 1, "array", "a:arr", "int",
            "returns how many of the n numbers in a are negative.",
            lambda r: (_ints(r, -20, 20, 0, 8),), (([],), ([0, 0],))),
    _family("sum_array", 2, "array", "a:arr", "int",
            "returns the sum of the n numbers in a (0 when n is 0).",
            lambda r: (_ints(r, -1000, 1000, 1, 10),), (([],), ([-7],))),
    _family("max_array", 2, "array", "a:arr", "int",
            "returns the largest of the n numbers in a (n >= 1).",
            lambda r: (_ints(r, -1000, 1000, 1, 10),), (([-7],), ([-3, -9, -4],))),
    _family("count_char", 2, "string", "s:str c:char", "int",
            "returns how many times the character c occurs in s.",
            lambda r: (_text(r), r.choice("aeiostn .")), (("", "a"), ("aaaa", "a"))),
    _family("count_vowels", 2, "string", "s:str", "int",
            "returns how many vowels (a, e, i, o, u, lower or upper case) s contains.",
            lambda r: (_text(r),), (("",), ("AEIOUaeiou",), ("rhythm",))),
    _family("popcount", 2, "bits", "x:uint", "int",
            "returns how many bits of x are 1.",
            lambda r: (_bits(r),), ((0,), (4294967295,), (2147483648,))),
    _family("digit_sum", 2, "arithmetic", "n:int", "int",
            "returns the sum of the decimal digits of n (n >= 0).",
            lambda r: (r.randint(0, 10**9),), ((0,), (9,), (1000000,))),
    _family("reverse_string", 2, "string", "s:buf", "void",
            "returns s reversed.", lambda r: (_text(r),), (("",), ("a",), ("ab",)),
            c_doc="reverses the string s in place."),
    _family("is_leap_year", 2, "arithmetic", "y:int", "bool",
            "tells whether year y is a leap year in the Gregorian calendar.",
            lambda r: (r.randint(1, 3000),), ((1900,), (2000,), (2024,), (2023,))),
    _family("gcd", 3, "arithmetic", "a:int b:int", "int",
            "returns the greatest common divisor of a and b (a, b >= 0; gcd(0, 0) is 0).",
            lambda r: (r.randint(0, 10**4) * r.choice([1, 6, 12]), r.randint(0, 10**4)),
            ((0, 0), (0, 7), (7, 0), (12, 18))),
    _family("is_prime", 3, "arithmetic", "n:int", "bool",
            "tells whether n is a prime number (numbers below 2 are not prime).",
            lambda r: (r.randint(-10, 10000),), ((0,), (1,), (2,), (-7,), (7919,), (7921,))),
    _family("is_palindrome", 3, "string", "s:str", "bool",
            "tells whether s reads the same backwards, ignoring case and every character "
            "that is not an ASCII letter or digit.",
            _palindrome_or_not, (("",), ("A man, a plan, a canal: Panama",), ("ab",))),
    _family("second_largest", 3, "array", "a:arr", "int",
            "returns the largest value in a that is smaller than its maximum (a has n >= 2 "
            "numbers, at least two of them different).",
            _distinct_pair_array, (([5, 5, 3],), ([-1, -2],), ([2, 9, 9, 9],))),
    _family("reverse_bits", 3, "bits", "x:uint", "uint",
            "returns x with its 32 bits in reverse order.",
            lambda r: (_bits(r),), ((0,), (1,), (4294967295,))),
    _family("is_sorted", 3, "array", "a:arr", "bool",
            "tells whether the n numbers in a are in non-decreasing order.",
            lambda r: (sorted(_ints(r, -9, 9, 2, 7)) if r.random() < 0.5
                       else _ints(r, -9, 9, 2, 7),),
            (([],), ([4],), ([1, 1, 2],), ([2, 1],))),
    _family("rotate_left", 3, "array", "a:mut_arr k:int", "void",
            "returns a rotated left by k places (k >= 0, possibly larger than the length).",
            lambda r: (_ints(r, -9, 9, 1, 7), r.randint(0, 15)),
            (([], 3), ([1, 2, 3], 0), ([1, 2, 3], 3), ([1, 2, 3], 4)),
            c_doc="rotates the n numbers of a left by k places in place (k >= 0, possibly "
            "larger than n; n may be 0)."),
    _family("count_words", 3, "string", "s:str", "int",
            "returns the number of words in s, where words are separated by one or more "
            "spaces (leading and trailing spaces allowed).",
            _spaced_words, (("",), ("   ",), ("one",), ("  two  words ",))),
    _family("is_power_of_two", 3, "bits", "x:uint", "bool",
            "tells whether x is a power of two (1, 2, 4, ...).",
            lambda r: (r.choice([1 << r.randint(0, 31), r.getrandbits(16)]),),
            ((0,), (1,), (2147483648,), (6,))),
    _family("max_subarray_sum", 4, "array", "a:arr", "int",
            "returns the largest sum of a non-empty run of consecutive numbers in a (n >= 1).",
            lambda r: (_ints(r, -30, 30, 1, 10),), (([-5],), ([-3, -1, -2],), ([2, -1, 2],))),
    _family("parse_int", 4, "string", "s:str", "int",
            "reads an integer from the start of s: skips leading spaces, then an optional "
            "+ or - sign, then decimal digits up to the first non-digit; returns 0 when there "
            "are no digits. The value fits in an int.",
            _number_text, (("",), ("   ",), ("-",), ("+7",), ("  -42abc",), ("12 34",))),
    _family("longest_run", 4, "array", "a:arr", "int",
            "returns the length of the longest run of equal consecutive numbers in a "
            "(0 when n is 0).",
            _runs, (([],), ([7],), ([1, 2, 3],))),
    _family("binary_gap", 4, "bits", "x:uint", "int",
            "returns the length of the longest run of 0 bits that has a 1 bit on both sides "
            "in the binary form of x (0 when there is none).",
            lambda r: (_bits(r),), ((0,), (1,), (9,), (20,), (2147483649,))),
    _family("remove_duplicates", 4, "array", "a:mut_arr", "void",
            "returns the sorted list a with repeated values removed (each kept once).",
            _sorted_dups, (([],), ([1, 1, 1],), ([1, 2, 3],)), prefix=True,
            c_doc="removes repeated values from the sorted numbers a[0..n-1] in place, keeping "
            "each value once in order at the front of a, and returns how many remain."),
    _family("power_mod", 4, "arithmetic", "b:ll e:ll m:ll", "ll",
            "returns b to the power e, modulo m (0 <= b, 0 <= e <= 10^18, 1 <= m <= 10^9+7).",
            lambda r: (r.randint(0, 10**12), r.randint(0, 10**12), r.randint(1, 10**9 + 7)),
            ((0, 0, 7), (5, 0, 1), (2, 10, 1000), (10**12, 10**12, 10**9 + 7))),
    _family("rotate_bits_left", 4, "bits", "x:uint k:int", "uint",
            "returns the 32-bit x rotated left by k bits (0 <= k < 32).",
            lambda r: (_bits(r), r.randint(1, 31)), ((1, 0), (2147483648, 1), (4294967295, 7))),
)  # fmt: skip
