//! Grayscale images as `data:` URLs (uncompressed BMP), so the page shows dataset images in
//! plain `<img>` elements without a canvas.

/// Encodes a `side × side` grayscale image (values 0..=255, row-major, top row first) as a
/// `data:image/bmp;base64,...` URL.
pub fn gray_bmp_data_url(pixels: &[f32], side: usize) -> String {
    assert_eq!(pixels.len(), side * side, "pixels must be side × side");
    let row_bytes = (side * 3).div_ceil(4) * 4;
    let image_size = row_bytes * side;
    let file_size = 54 + image_size;
    let mut b = Vec::with_capacity(file_size);
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&(file_size as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&(side as i32).to_le_bytes());
    // Negative height: rows stored top-down.
    b.extend_from_slice(&(-(side as i32)).to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(image_size as u32).to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    for y in 0..side {
        for x in 0..side {
            // Ink dark on a light background, as on paper.
            let v = 255 - pixels[y * side + x].clamp(0.0, 255.0).round() as u8;
            b.extend_from_slice(&[v, v, v]);
        }
        b.resize(b.len() + row_bytes - side * 3, 0);
    }
    format!("data:image/bmp;base64,{}", base64(&b))
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (c as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn bmp_has_a_valid_header_and_padded_rows() {
        let url = gray_bmp_data_url(&[0.0, 255.0, 128.0, 300.0, 0.0, 0.0, 0.0, 0.0, 0.0], 3);
        let body = url.strip_prefix("data:image/bmp;base64,").unwrap();
        // 3 pixels × 3 bytes = 9, padded to 12 bytes a row.
        assert_eq!(body.len(), (54 + 36usize).div_ceil(3) * 4);
        assert!(body.starts_with("Qk")); // "BM"
    }
}
