/// Direct loop implementations of the operations, written from their definitions, to check
/// oneDNN's results against. Slow and obvious on purpose.
import ZooTensor

enum Reference {
    /// Cross-correlation of NCHW `x` with OIHW `w` (`w` has `C / groups` input channels).
    static func conv2d(_ x: [Float], _ xShape: [Int], _ w: [Float], _ wShape: [Int], bias: [Float]?,
                       stride: [Int], padBefore: [Int], padAfter: [Int], dilation: [Int] = [1, 1], groups: Int = 1) -> (values: [Float], shape: [Int]) {
        let (n, c, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (o, ig, kh, kw) = (wShape[0], wShape[1], wShape[2], wShape[3])
        let oh = (h + padBefore[0] + padAfter[0] - ((kh - 1) * dilation[0] + 1)) / stride[0] + 1
        let ow = (wd + padBefore[1] + padAfter[1] - ((kw - 1) * dilation[1] + 1)) / stride[1] + 1
        var y = [Float](repeating: 0, count: n * o * oh * ow)
        let outPerGroup = o / groups
        for b in 0..<n {
            for oc in 0..<o {
                let g = oc / outPerGroup
                for r in 0..<oh {
                    for s in 0..<ow {
                        var sum = bias?[oc] ?? 0
                        for icg in 0..<ig {
                            let ic = g * ig + icg
                            for p in 0..<kh {
                                for q in 0..<kw {
                                    let hi = r * stride[0] - padBefore[0] + p * dilation[0]
                                    let wi = s * stride[1] - padBefore[1] + q * dilation[1]
                                    guard hi >= 0, hi < h, wi >= 0, wi < wd else { continue }
                                    sum += x[((b * c + ic) * h + hi) * wd + wi] * w[((oc * ig + icg) * kh + p) * kw + q]
                                }
                            }
                        }
                        y[((b * o + oc) * oh + r) * ow + s] = sum
                    }
                }
            }
        }
        return (y, [n, o, oh, ow])
    }

    /// Pooling with PyTorch's semantics: `outputSize` positions per axis; average divides by
    /// the window clipped to input + requested padding (`countPadding`) or to the input only.
    static func pool(_ x: [Float], _ shape: [Int], kernel: [Int], stride: [Int], padBefore: [Int], padAfter: [Int],
                     outputSize: [Int], max isMax: Bool, countPadding: Bool) -> [Float] {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        var y: [Float] = []
        for plane in 0..<n * c {
            for r in 0..<outputSize[0] {
                for s in 0..<outputSize[1] {
                    let h0 = r * stride[0] - padBefore[0], w0 = s * stride[1] - padBefore[1]
                    let h1 = min(h0 + kernel[0], h + padAfter[0]), w1 = min(w0 + kernel[1], w + padAfter[1])
                    var best = -Float.infinity, sum: Float = 0, count = 0
                    for hi in max(h0, 0)..<min(h1, h) {
                        for wi in max(w0, 0)..<min(w1, w) {
                            let v = x[(plane * h + hi) * w + wi]
                            best = max(best, v)
                            sum += v
                            count += 1
                        }
                    }
                    let divisor = countPadding ? (h1 - h0) * (w1 - w0) : count
                    y.append(isMax ? best : sum / Float(divisor))
                }
            }
        }
        return y
    }
}
