//VERSION=3
// canopywatch true_color: red, green, blue with a 2.5 gain as 8-bit, and an alpha band from dataMask.
function setup() {
  return {
    input: [{ bands: ["B02", "B03", "B04", "dataMask"], units: "REFLECTANCE" }],
    output: { id: "default", bands: 4, sampleType: "UINT8" },
    mosaicking: "SIMPLE"
  };
}

function evaluatePixel(sample) {
  return [255 * 2.5 * sample.B04, 255 * 2.5 * sample.B03, 255 * 2.5 * sample.B02,
          255 * sample.dataMask];
}
