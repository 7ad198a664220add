package azemu

import (
	"net/http"
	"slices"
	"strings"
)

// azureRegions are the public-cloud region names ARM accepts as locations.
var azureRegions = []string{
	"australiacentral", "australiacentral2", "australiaeast", "australiasoutheast", "austriaeast",
	"belgiumcentral", "brazilsouth", "brazilsoutheast", "canadacentral", "canadaeast", "centralindia",
	"centralus", "chilecentral", "denmarkeast", "eastasia", "eastus", "eastus2", "francecentral", "francesouth",
	"germanynorth", "germanywestcentral", "indonesiacentral", "israelcentral", "italynorth", "japaneast",
	"japanwest", "jioindiacentral", "jioindiawest", "koreacentral", "koreasouth", "malaysiawest",
	"mexicocentral", "newzealandnorth", "northcentralus", "northeurope", "norwayeast", "norwaywest",
	"polandcentral", "qatarcentral", "southafricanorth", "southafricawest", "southcentralus", "southindia",
	"southeastasia", "spaincentral", "swedencentral", "swedensouth", "switzerlandnorth", "switzerlandwest",
	"uaecentral", "uaenorth", "uksouth", "ukwest", "westcentralus", "westeurope", "westindia", "westus",
	"westus2", "westus3",
}

func validRegion(loc string) bool { return slices.Contains(azureRegions, normRegion(loc)) }

func locationError(loc, typ string) *armError {
	if typ == "Microsoft.Resources/resourceGroups" {
		return errf(http.StatusBadRequest, "LocationNotAvailableForResourceGroup",
			"The provided location '%s' is not available for resource group. List of available regions is '%s'.", loc, strings.Join(azureRegions, ","))
	}
	return errf(http.StatusBadRequest, "LocationNotAvailableForResourceType",
		"The provided location '%s' is not available for resource type '%s'. List of available regions for the resource type is '%s'.", loc, typ, strings.Join(azureRegions, ","))
}
