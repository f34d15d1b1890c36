import Foundation
import ZooTensor

/// How the learning rate changes over training.
public enum LearningRateSchedule: Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// Multiply the base rate by `factors[i]` from epoch `milestones[i]` on (epochs count from 0):
    /// the classic CIFAR recipe is milestones 81 and 122 with factors 0.1 and 0.01.
    case step(milestones: [Int], factors: [Float])
    /// Cosine decay from the base rate to `minimum` over the run's steps.
    case cosine(minimum: Float)
    /// Smith's one-cycle policy as PyTorch's `OneCycleLR` (cosine annealing) shapes it: from
    /// `base / startDivisor` up to `base` over the first `peakFraction` of the run, then down to
    /// `base / (startDivisor x endDivisor)` at its end. (PyTorch also cycles momentum inversely;
    /// zoo keeps momentum fixed.)
    case oneCycle(peakFraction: Double, startDivisor: Float, endDivisor: Float)
    /// Linear warmup from `startFactor` of the base rate over `epochs`, then `then`.
    indirect case warmup(epochs: Double, startFactor: Float, then: LearningRateSchedule)

    /// The rate at `epoch` (fractional: the position within the run, in epochs) of a run of
    /// `totalEpochs`.
    public func rate(base: Float, epoch: Double, totalEpochs: Int) -> Float {
        switch self {
        case .constant:
            return base
        case let .step(milestones, factors):
            var rate = base
            for (milestone, factor) in zip(milestones, factors) where epoch >= Double(milestone) { rate = base * factor }
            return rate
        case let .cosine(minimum):
            let progress = min(max(epoch / Double(max(totalEpochs, 1)), 0), 1)
            return minimum + (base - minimum) * Float((1 + cos(Double.pi * progress)) / 2)
        case let .oneCycle(peakFraction, startDivisor, endDivisor):
            let progress = min(max(epoch / Double(max(totalEpochs, 1)), 0), 1)
            let start = base / startDivisor, end = start / endDivisor
            func anneal(_ from: Float, _ to: Float, _ fraction: Double) -> Float {
                to + (from - to) * Float((1 + cos(Double.pi * fraction)) / 2)
            }
            if progress < peakFraction { return anneal(start, base, progress / peakFraction) }
            return anneal(base, end, (progress - peakFraction) / max(1 - peakFraction, 1e-12))
        case let .warmup(epochs, startFactor, then):
            guard epoch < epochs else { return then.rate(base: base, epoch: epoch, totalEpochs: totalEpochs) }
            let fraction = Float(epoch / epochs)
            return then.rate(base: base, epoch: epoch, totalEpochs: totalEpochs) * (startFactor + (1 - startFactor) * fraction)
        }
    }
}

/// Keras's `ReduceLROnPlateau` on validation loss: when the loss has not improved by more than
/// `minimumDelta` for `patience` epochs, the rate is multiplied by `factor` (not below
/// `minimumRate`), then `cooldown` epochs pass before counting again.
public struct ReduceOnPlateau: Sendable, Equatable, Codable {
    public var factor: Float
    public var patience: Int
    public var minimumDelta: Float
    public var minimumRate: Float
    public var cooldown: Int
    /// State: the best loss seen, epochs without improvement, cooldown left, the current scale.
    public private(set) var best = Float.infinity
    public private(set) var waited = 0
    public private(set) var cooling = 0
    public private(set) var scale: Float = 1

    public init(factor: Float = 0.1, patience: Int = 10, minimumDelta: Float = 1e-4, minimumRate: Float = 0, cooldown: Int = 0) {
        self.factor = factor
        self.patience = patience
        self.minimumDelta = minimumDelta
        self.minimumRate = minimumRate
        self.cooldown = cooldown
    }

    /// Records an epoch's validation loss; returns the factor to apply to the scheduled rate.
    public mutating func update(validationLoss: Float, scheduledRate: Float) -> Float {
        if cooling > 0 { cooling -= 1 }
        if validationLoss < best - minimumDelta {
            best = validationLoss
            waited = 0
        } else if cooling == 0 {
            waited += 1
            if waited >= patience {
                scale = max(scale * factor, scheduledRate > 0 ? minimumRate / scheduledRate : 0)
                waited = 0
                cooling = cooldown
            }
        }
        return scale
    }
}

/// Early stopping on validation loss: stop after `patience` epochs without an improvement of
/// more than `minimumDelta`; the best epoch's weights are the ones to keep.
public struct EarlyStopping: Sendable, Equatable, Codable {
    public var patience: Int
    public var minimumDelta: Float
    public private(set) var best = Float.infinity
    public private(set) var bestEpoch = -1
    public private(set) var waited = 0

    public init(patience: Int = 7, minimumDelta: Float = 0) {
        self.patience = patience
        self.minimumDelta = minimumDelta
    }

    /// Records an epoch; returns whether it is the best so far and whether to stop.
    public mutating func update(epoch: Int, validationLoss: Float) -> (improved: Bool, stop: Bool) {
        if validationLoss < best - minimumDelta {
            best = validationLoss
            bestEpoch = epoch
            waited = 0
            return (true, false)
        }
        waited += 1
        return (false, waited >= patience)
    }
}
