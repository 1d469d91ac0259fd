//! Exact numbers from binary encodings (Avro `decimal`, Kafka Connect `Decimal`).

/// A big-endian two's-complement unscaled integer with `scale` fractional digits, as decimal
/// text with every digit (`[0x30, 0x39]`, scale 2 → `"123.45"`).
pub fn decimal_from_be(bytes: &[u8], scale: u32) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    // Magnitude: two's complement negated when negative.
    let mut mag: Vec<u8> = if negative {
        let mut m: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        m
    } else {
        bytes.to_vec()
    };
    // Base 256 → base 10^9 by repeated division.
    let mut chunks: Vec<u32> = Vec::new();
    while mag.iter().any(|&b| b != 0) {
        let mut rem: u64 = 0;
        for b in mag.iter_mut() {
            let cur = (rem << 8) | *b as u64;
            *b = (cur / 1_000_000_000) as u8;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while mag.first() == Some(&0) && mag.len() > 1 {
            mag.remove(0);
        }
    }
    let mut digits = match chunks.pop() {
        None => "0".to_string(),
        Some(top) => {
            let mut s = top.to_string();
            for c in chunks.iter().rev() {
                s.push_str(&format!("{c:09}"));
            }
            s
        }
    };
    let scale = scale as usize;
    if scale > 0 {
        if digits.len() <= scale {
            digits = format!("{}{digits}", "0".repeat(scale + 1 - digits.len()));
        }
        digits.insert(digits.len() - scale, '.');
    }
    if negative && digits.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        digits.insert(0, '-');
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_from_bytes() {
        assert_eq!(decimal_from_be(&[0x30, 0x39], 2), "123.45");
        assert_eq!(decimal_from_be(&[0xcf, 0xc7], 2), "-123.45");
        assert_eq!(decimal_from_be(&[0x00], 0), "0");
        assert_eq!(decimal_from_be(&[], 3), "0.000");
        assert_eq!(decimal_from_be(&[0x05], 3), "0.005");
        assert_eq!(decimal_from_be(&[0xff], 1), "-0.1");
        assert_eq!(decimal_from_be(&[0x80], 0), "-128");
        // 65 digits: 10^65 - 1 with scale 30.
        let nines = "9".repeat(65);
        let mut v: Vec<u8> = vec![0];
        for d in nines.bytes() {
            let mut carry = (d - b'0') as u32;
            for b in v.iter_mut().rev() {
                let x = *b as u32 * 10 + carry;
                *b = (x & 0xff) as u8;
                carry = x >> 8;
            }
            while carry > 0 {
                v.insert(0, (carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        assert_eq!(decimal_from_be(&v, 30), format!("{}.{}", "9".repeat(35), "9".repeat(30)));
    }
}
