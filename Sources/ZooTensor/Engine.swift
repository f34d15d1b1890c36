/// Facts about the compute engine.
public enum Engine {
    /// The version of the oneDNN library in use.
    public static var oneDNNVersion: String { DNNL.version }
}
