"""The 16-bit amount field of a class-0 credit token (IEC 62055-41), in units of 0.1 kWh.

The field is a 2-bit exponent ``e`` over a 14-bit mantissa ``m``. Its value is
``m * 10**e`` plus, for each step ``n = 1..e``, ``2**14 * 10**(n - 1)``: each exponent starts
where the previous one ended, so small amounts keep 0.1 kWh precision and large ones give it up
(1 kWh from 1638.4 kWh, 10 kWh from 18022.4 kWh, 100 kWh from 181862.4 kWh).
"""

from __future__ import annotations

from protocol.sts.errors import TokenError

_MANTISSA_BITS = 14
_MANTISSA_MAX = (1 << _MANTISSA_BITS) - 1
_EXPONENT_MAX = 3
# Where each exponent's range starts: the sum of 2**14 * 10**(n - 1) for n = 1..e.
_OFFSETS = tuple(
    sum((1 << _MANTISSA_BITS) * 10 ** (n - 1) for n in range(1, e + 1)) for e in range(4)
)
MAX_UNITS = _OFFSETS[_EXPONENT_MAX] + _MANTISSA_MAX * 10**_EXPONENT_MAX  # 1,820,162.4 kWh
WH_PER_UNIT = 100


def encode_amount(units: int) -> int:
    """The 16-bit field for exactly ``units`` (0.1 kWh); refuses amounts the field cannot carry."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TokenError(f"the amount must be an integer number of 0.1 kWh units, not {units!r}")
    if not 0 <= units <= MAX_UNITS:
        raise TokenError(
            f"{units} units of 0.1 kWh is outside what a token carries (0 to {MAX_UNITS})"
        )
    for exponent in range(_EXPONENT_MAX, -1, -1):
        rest = units - _OFFSETS[exponent]
        if rest >= 0:
            mantissa, remainder = divmod(rest, 10**exponent)
            if remainder or mantissa > _MANTISSA_MAX:
                below = round_down_units(units)
                raise TokenError(
                    f"{units} units of 0.1 kWh cannot be carried exactly by a token; "
                    f"the nearest amount below is {below} (use units_from_wh to round)"
                )
            return (exponent << _MANTISSA_BITS) | mantissa
    raise AssertionError("unreachable: exponent 0 starts at 0")


def decode_amount(field: int) -> int:
    """The number of 0.1 kWh units a 16-bit amount field stands for."""
    exponent, mantissa = field >> _MANTISSA_BITS, field & _MANTISSA_MAX
    return _OFFSETS[exponent] + mantissa * 10**exponent


def round_down_units(units: int) -> int:
    """The largest amount the field carries that is not above ``units`` (0 <= units <= MAX)."""
    for exponent in range(_EXPONENT_MAX, -1, -1):
        rest = units - _OFFSETS[exponent]
        if rest >= 0:
            step = 10**exponent
            return _OFFSETS[exponent] + min(rest // step, _MANTISSA_MAX) * step
    raise AssertionError("unreachable: exponent 0 starts at 0")


def units_from_wh(energy_wh: int) -> int:
    """Token units (0.1 kWh) for ``energy_wh``, rounded down so a token never credits more
    than was bought: to the 0.1 kWh, and above 1638.3 kWh to the coarser step the field
    carries there. Refuses negative energy and energy above 1,820,162.4 kWh."""
    if isinstance(energy_wh, bool) or not isinstance(energy_wh, int):
        raise TokenError(f"the energy must be an integer number of Wh, not {energy_wh!r}")
    if energy_wh < 0:
        raise TokenError(f"the energy must not be negative (got {energy_wh} Wh)")
    units = energy_wh // WH_PER_UNIT
    if units > MAX_UNITS:
        raise TokenError(
            f"{energy_wh} Wh is more than one token can carry "
            f"({MAX_UNITS * WH_PER_UNIT} Wh); split the purchase"
        )
    return round_down_units(units)
